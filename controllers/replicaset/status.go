// The ReplicaSet's status writes: the observation and conditions, written only when they change
// (offsets at most every OffsetInterval).

package replicaset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
	"github.com/constellation-sh/constellation/pkg/store"
)

// withAgreedCondition adds the PrimaryAgreed condition from Observation.PrimaryAgreed when the
// engine reports none itself (mongo): the mesh routes <rs>-primary only while it is True.
func withAgreedCondition(obs replicaset.Observation, now time.Time) []v1.Condition {
	if v1.FindCondition(obs.Conditions, v1.ReplicaSetPrimaryAgreed) != nil {
		return obs.Conditions
	}
	c := condition(v1.ReplicaSetPrimaryAgreed, false, "NotAgreed", "no primary agreed")
	if obs.PrimaryAgreed && obs.Primary != "" {
		c = condition(v1.ReplicaSetPrimaryAgreed, true, "Agreed", "primary "+obs.Primary)
	}
	c.LastTransitionTime = now
	return append(append([]v1.Condition(nil), obs.Conditions...), c)
}

// writeStatus writes the observation with compare-and-swap, skipping offset-only changes
// younger than OffsetInterval.
func (c *Controller) writeStatus(ctx context.Context, rs *v1.ReplicaSet, e *engineEntry, obs replicaset.Observation) (reconcile.Result, error) {
	next := statusFor(rs.Status, rs.Metadata.Generation, obs)
	changed, offsetsOnly := statusChanged(rs.Status, next)
	now := c.cfg.Clock.Now()
	if !changed || (offsetsOnly && now.Sub(e.lastWrite) < c.cfg.OffsetInterval) {
		return reconcile.Result{}, nil
	}
	if !c.cfg.IsLeader() {
		return reconcile.Result{}, nil
	}
	if res, written, err := c.putStatus(ctx, rs, next); !written {
		return res, err
	}
	e.lastWrite = now
	if next.Primary != rs.Status.Primary {
		c.primaryChanges.WithLabelValues(rs.Metadata.Name).Inc()
		c.log.Info("replica set primary", "replicaset", rs.Metadata.Name, "primary", next.Primary,
			"previous", rs.Status.Primary, "agreed", obs.PrimaryAgreed, "actions", obs.Actions)
	}
	return reconcile.Result{}, nil
}

// writeConditions records conditions for the paths that never reach the engine. No requeue:
// a change of the objects involved enqueues the ReplicaSet again.
func (c *Controller) writeConditions(ctx context.Context, rs *v1.ReplicaSet, conds ...v1.Condition) (reconcile.Result, error) {
	next := rs.Status
	next.Conditions = append([]v1.Condition(nil), rs.Status.Conditions...)
	changed := next.ObservedGeneration != rs.Metadata.Generation
	next.ObservedGeneration = rs.Metadata.Generation
	for _, cond := range conds {
		cond.LastTransitionTime = c.cfg.Clock.Now()
		if v1.SetCondition(&next.Conditions, cond) {
			changed = true
		}
		if cond.Type == v1.ReplicaSetReady && cond.Status == v1.ConditionFalse {
			if v1.SetCondition(&next.Conditions, v1.Condition{Type: v1.ReplicaSetPrimaryAgreed, Status: v1.ConditionFalse,
				Reason: cond.Reason, Message: cond.Message, LastTransitionTime: cond.LastTransitionTime}) {
				changed = true
			}
		}
	}
	if !changed || !c.cfg.IsLeader() {
		return reconcile.Result{}, nil
	}
	res, _, err := c.putStatus(ctx, rs, next)
	return res, err
}

// putStatus writes next as the status of rs, compare-and-swap. A conflict requeues (the watch
// brings the newer object); a ReplicaSet deleted meanwhile is done with. written is false
// whenever the status was not stored.
func (c *Controller) putStatus(ctx context.Context, rs *v1.ReplicaSet, next v1.ReplicaSetStatus) (res reconcile.Result, written bool, err error) {
	cp := rs.DeepCopyObject().(*v1.ReplicaSet)
	cp.Status = next
	_, err = c.cfg.Store.UpdateStatus(ctx, cp)
	switch {
	case errors.Is(err, store.ErrConflict):
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, false, nil
	case errors.Is(err, store.ErrNotFound):
		return reconcile.Result{}, false, nil
	case err != nil:
		return reconcile.Result{}, false, fmt.Errorf("update status of replicasets/%s: %w", rs.Metadata.Name, err)
	}
	return reconcile.Result{}, true, nil
}
