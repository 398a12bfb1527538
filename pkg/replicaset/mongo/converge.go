// Converging on the agreed primary: one reconfig (or step-down) per Reconcile toward the plan,
// after the last config is committed.

package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// converge takes one step on the agreed primary.
func (s *step) converge(ctx context.Context, primary *probe, view *statusReply) error {
	cfg, err := s.getConfig(ctx, primary.m)
	if err != nil {
		werr, transient := classify(err)
		s.ready(v1.ConditionFalse, ReasonUnreachable, "replSetGetConfig on %s: %v", primary.m.Name, werr)
		if transient {
			return nil
		}
		return fmt.Errorf("replicasets/%s: replSetGetConfig on %s: %w", s.e.name, primary.m.Name, werr)
	}
	if ok, have, need := committed(cfg, view); !ok {
		s.ready(v1.ConditionFalse, ReasonWaitingForCommit, "config version %d term %d held by %d of the %d voters needed", cfg.version, cfg.term, have, need)
		return nil
	}
	targets := targetsOf(s.d, s.spec)
	st := Plan(cfg.members, targets, hostOf(primary.m))
	switch st.Kind {
	case StepNone:
		s.converged(cfg)
		return nil
	case StepStepDown:
		return s.stepDown(ctx, primary, st)
	}
	next := applyStep(cfg.members, st)
	doc := cfg.withMembers(next)
	cmd := bson.D{{Key: "replSetReconfig", Value: doc}, {Key: "maxTimeMS", Value: s.e.timeout.Milliseconds()}}
	err = s.e.run(ctx, primary.m, time.Second, cmd, nil)
	what := fmt.Sprintf("replSetReconfig on %s to version %d: %s", primary.m.Name, cfg.version+1, st.Reason)
	if err == nil {
		s.act("%s", what)
		s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s", what)
		return nil
	}
	werr, transient := classify(err)
	if errors.Is(werr, ErrNotCommitted) && serverCode(err) == codeMaxTimeMSExpired {
		// Installed on the primary, not yet on a majority: the next step waits for it.
		s.act("%s (installed, not yet committed)", what)
		s.ready(v1.ConditionFalse, ReasonWaitingForCommit, "%s: %v", what, werr)
		return nil
	}
	if transient {
		s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s: %v", what, werr)
		return nil
	}
	s.ready(v1.ConditionFalse, ReasonConfigRejected, "%s: %v", what, werr)
	return fmt.Errorf("replicasets/%s: %s: %w", s.e.name, what, werr)
}

func (s *step) converged(cfg *rawConfig) {
	inCfg := map[string]bool{}
	for _, m := range cfg.members {
		inCfg[m.Host] = true
	}
	var pending, unhealthy []string
	for i, m := range s.d.Members {
		if !inCfg[hostOf(m)] {
			pending = append(pending, m.Name)
		} else if s.obs.Members[i].Health != HealthHealthy {
			unhealthy = append(unhealthy, m.Name)
		}
	}
	switch {
	case len(pending) > 0:
		s.ready(v1.ConditionFalse, ReasonMembersPending, "not in the config until their replicas are ready: %s", strings.Join(pending, ", "))
	case len(unhealthy) > 0:
		s.ready(v1.ConditionFalse, ReasonMembersPending, "primary %s; unhealthy members: %s", s.obs.Primary, strings.Join(unhealthy, ", "))
	default:
		s.ready(v1.ConditionTrue, ReasonConverged, "primary %s, %d members, %d voting, config version %d", s.obs.Primary, len(cfg.members), countVoters(cfg.members), cfg.version)
	}
}

// stepDown asks the primary to hand over (election handoff) before a change it cannot take
// as primary.
func (s *step) stepDown(ctx context.Context, primary *probe, st Step) error {
	cmd := bson.D{{Key: "replSetStepDown", Value: 60}, {Key: "secondaryCatchUpPeriodSecs", Value: 10}}
	err := s.e.run(ctx, primary.m, 11*time.Second, cmd, nil)
	what := fmt.Sprintf("replSetStepDown on %s: %s", primary.m.Name, st.Reason)
	if err != nil && serverCode(err) != 0 {
		werr, _ := classify(err)
		s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s: %v", what, werr)
		return nil
	}
	// A network error is expected from servers that drop connections on step-down.
	s.act("%s", what)
	s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s", what)
	return nil
}
