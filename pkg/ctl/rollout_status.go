package ctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func (a *app) rolloutStatusCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status svc/NAME [--timeout D]",
		Short: "Wait until a Service's rollout is complete, printing its progress",
		Long: "status watches the Service and prints a line whenever its rollout moves. It exits 0\n" +
			"once every replica runs the current spec and is ready (and no old replica is left),\n" +
			"non-zero with the reason when the rollout failed (Progressing=False RolloutFailed,\n" +
			"which includes the progress deadline, or Degraded=True ImageNotFound/RolloutFailed)\n" +
			"or when --timeout passes first.",
		Example: "  ctl rollout status svc/hello\n  ctl rollout status hello --timeout 30s",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := serviceArg("rollout status", args)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return fmt.Errorf("rollout status: --timeout must be positive, got %s", timeout)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			last := ""
			err = followService(ctx, c, name, func(s *v1.Service) (bool, error) {
				st := rolloutStatus(s)
				if st.progress != last {
					fmt.Fprintln(a.env.Out, st.progress)
					last = st.progress
				}
				return st.done || st.err != nil, st.err
			})
			if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && cmd.Context().Err() == nil {
				msg := fmt.Sprintf("service/%s: timed out after %s waiting for the rollout", name, timeout)
				if last != "" {
					msg += " (last: " + last + ")"
				}
				return errors.New(msg)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait before giving up")
	return cmd
}

// rolloutStatus is where a Service's rollout stands, for `rollout status`: stricter than
// rolloutState (apply --wait), which is content with Ready, this waits for every replica to
// run the current spec, as kubectl's rollout status does. Failures are the ones that do not
// heal by waiting; other stalls (Unschedulable, WaitingForNode, WaitingForDependency, a
// disruption brake) are reported and waited out until the timeout.
func rolloutStatus(s *v1.Service) rollout {
	name := "service/" + s.Metadata.Name
	desired := s.DesiredReplicas()
	st := s.Status
	wait := func(format string, args ...any) rollout {
		return rollout{progress: "Waiting for rollout: " + fmt.Sprintf(format, args...)}
	}
	switch {
	case s.Metadata.DeletionTimestamp != nil:
		return rollout{progress: name + " is being deleted", err: fmt.Errorf("%s is being deleted", name)}
	case st.ObservedGeneration < s.Metadata.Generation:
		return wait("generation %d not yet observed", s.Metadata.Generation)
	}
	if p := v1.FindCondition(st.Conditions, v1.ServiceProgressing); p != nil && p.Status == v1.ConditionFalse {
		switch p.Reason {
		case v1.ReasonRolloutFailed, v1.ReasonInvalidSpec:
			err := conditionError(name+": rollout failed", p)
			return rollout{progress: err.Error(), err: err}
		case v1.ReasonRolloutComplete:
		default:
			msg := string(p.Reason)
			if p.Message != "" {
				msg += ": " + p.Message
			}
			return wait("%s", msg)
		}
	}
	if d := v1.FindCondition(st.Conditions, v1.ServiceDegraded); d != nil && d.Status == v1.ConditionTrue &&
		(d.Reason == v1.ReasonImageNotFound || d.Reason == v1.ReasonRolloutFailed) {
		err := conditionError(name+": rollout failed", d)
		return rollout{progress: err.Error(), err: err}
	}
	switch {
	case s.Spec.IsUpstreamService():
		return rollout{done: true, progress: fmt.Sprintf("%s has no replicas (upstreams): nothing to roll out", name)}
	case st.UpdatedReplicas < desired:
		return wait("%d of %d replicas updated", st.UpdatedReplicas, desired)
	case st.Replicas > desired && st.Replicas > st.UpdatedReplicas:
		return wait("%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas)
	case st.Replicas > desired:
		// Scaled down: the replicas are of the current spec, but too many still run.
		return wait("%d replicas above the %d wanted are pending termination", st.Replicas-desired, desired)
	case st.ReadyReplicas < desired:
		return wait("%d of %d updated replicas are ready", st.ReadyReplicas, desired)
	}
	return rollout{done: true, progress: fmt.Sprintf("%s successfully rolled out: %d of %d updated replicas are ready", name, st.ReadyReplicas, desired)}
}
