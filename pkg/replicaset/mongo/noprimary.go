// A set without an agreed primary: wait for the election or, with the opt-in, force a reconfig
// onto the survivors when a majority of the voters is known gone.

package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// noPrimary handles a set without an agreed primary: wait for the election, or, with the
// opt-in, force a reconfig onto the survivors when a majority of the voters is known gone.
func (s *step) noPrimary(ctx context.Context, statusPrimary string, selfPrimaries []string) error {
	if statusPrimary != "" || len(selfPrimaries) > 0 {
		s.ready(v1.ConditionFalse, ReasonNoPrimary, "primary not agreed: replSetGetStatus says %q, members that say they are primary: %v", s.nameOf(statusPrimary), s.namesOf(selfPrimaries))
		return nil
	}
	// The newest config any member holds.
	var cfg *rawConfig
	var from *probe
	for _, p := range s.probes {
		if !p.initiated(s.spec.ReplSetName) && p.status == nil {
			continue
		}
		c, err := s.getConfig(ctx, p.m)
		if err == nil && (cfg == nil || c.version > cfg.version) {
			cfg, from = c, p
		}
	}
	if cfg == nil {
		s.ready(v1.ConditionFalse, ReasonNoPrimary, "no primary, and no member answers replSetGetConfig")
		return nil
	}
	ready := map[string]bool{}
	for _, m := range s.d.Members {
		if m.Ready {
			ready[hostOf(m)] = true
		}
	}
	var gone, alive, unsure []string
	for _, m := range cfg.members {
		if m.Votes != 1 {
			continue
		}
		p := s.byHost[m.Host]
		switch {
		case p != nil && p.reachable():
			alive = append(alive, m.Host)
		case !ready[m.Host]:
			gone = append(gone, m.Host) // not desired, or its replica is not running
		default:
			unsure = append(unsure, m.Host) // running but unreachable: maybe a partition
		}
	}
	voters := len(alive) + len(gone) + len(unsure)
	need := voters/2 + 1
	if len(gone) < need {
		s.ready(v1.ConditionFalse, ReasonNoPrimary, "no primary; %d of %d voters answer, waiting for an election (gone: %v, unreachable: %v)", len(alive), voters, s.namesOf(gone), s.namesOf(unsure))
		return nil
	}
	// Survivors hold the set's config and data: a replica re-created on an empty volume answers
	// but has neither, and must not be the set's only member after a force.
	survivorsAlive := map[string]bool{}
	for _, p := range s.probes {
		if p.initiated(s.spec.ReplSetName) && p.m.Ready && !p.m.EmptyData {
			survivorsAlive[hostOf(p.m)] = true
		}
	}
	survivors := Survivors(cfg.members, targetsOf(s.d, s.spec), survivorsAlive)
	if len(survivors) == 0 || !leavesElectable(survivors, "", 0, 0, false) {
		s.ready(v1.ConditionFalse, ReasonMajorityLost, "no primary and a majority of voters is gone (%v); no electable survivor to reconfigure onto", s.namesOf(gone))
		return nil
	}
	var survivorNames []string
	for _, m := range survivors {
		survivorNames = append(survivorNames, s.nameOf(m.Host))
	}
	if !s.spec.AllowForceReconfig {
		s.ready(v1.ConditionFalse, ReasonMajorityLost, "no primary and a majority of voters is gone (%v); set spec.mongo.allowForceReconfig to force a reconfig onto %v (majority-committed writes may be rolled back)", s.namesOf(gone), survivorNames)
		return nil
	}
	// Run it on a survivor: the member the newest config came from if it survives, else the first.
	target := from
	if !survivorsAlive[hostOf(target.m)] || !containsHost(survivors, hostOf(target.m)) {
		target = s.byHost[survivors[0].Host]
	}
	doc := cfg.withMembers(survivors)
	err := s.e.run(ctx, target.m, time.Second, bson.D{{Key: "replSetReconfig", Value: doc}, {Key: "force", Value: true}}, nil)
	what := fmt.Sprintf("forced replSetReconfig on %s onto %v (voters gone: %v)", target.m.Name, survivorNames, s.namesOf(gone))
	if err != nil {
		werr, transient := classify(err)
		s.ready(v1.ConditionFalse, ReasonMajorityLost, "%s: %v", what, werr)
		if transient {
			return nil
		}
		return fmt.Errorf("replicasets/%s: %s: %w", s.e.name, what, werr)
	}
	s.act("%s", what)
	s.ready(v1.ConditionFalse, ReasonForcedReconfig, "%s", what)
	return nil
}

func containsHost(ms []ConfigMember, host string) bool {
	for _, m := range ms {
		if m.Host == host {
			return true
		}
	}
	return false
}
