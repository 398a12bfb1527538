package dns

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
)

// The per-node records reconciler (KindNodeRecords): <node>.<zone> A or AAAA records for every
// Ready node when Config.NodeRecordsZone is set. The pure parts are WantedNodeRecords
// (targets.go) and PlanNodeRecords (plan.go); this file reads the zone, carries the plan out
// and counts the outcome. Its records have no object to carry a condition: failures are logged
// and counted.

// reconcileNodeRecords converges <node>.<zone> for every present node. It lists the whole zone
// (paginated) once, which also shows foreign records in the way.
func (c *Controller) reconcileNodeRecords(ctx context.Context) (reconcile.Result, error) {
	if c.cfg.NodeRecordsZone == "" {
		return reconcile.Result{}, nil
	}
	cl, err := c.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	zoneID, err := c.p.ZoneID(ctx, c.cfg.NodeRecordsZone)
	if err != nil {
		return c.nodeRecordsFailed(ctx, err)
	}
	have, err := c.p.ListRecords(ctx, zoneID, cloudflare.Filter{})
	if err != nil {
		return c.nodeRecordsFailed(ctx, err)
	}
	return c.syncNodeRecords(ctx, cl, zoneID, have)
}

// syncNodeRecords converges the per-node records given have, the whole zone.
func (c *Controller) syncNodeRecords(ctx context.Context, cl Cluster, zoneID string, have []cloudflare.Record) (reconcile.Result, error) {
	want := WantedNodeRecords(c.cfg.NodeRecordsZone, c.cfg.NodeRecordsTTL, c.cfg.Cluster, cl)
	log := c.log.With("nodeRecords", c.cfg.NodeRecordsZone)
	plan, brake := PlanNodeRecords(want, have, NodeOwner(c.cfg.Cluster, ""))
	if brake.On() {
		c.brakeOn.Set(1)
		c.brakeHeld(log, "per-node records", brake.Lost, brake.Total, len(brake.Held))
	}
	if _, err := c.apply(ctx, zoneID, plan, log); err != nil {
		c.record(nodeRecordsKey, "", plan.Changes()+len(plan.Blocked), len(plan.Foreign))
		return c.nodeRecordsFailed(ctx, err)
	}
	c.record(nodeRecordsKey, want.Digest(), len(plan.Blocked), len(plan.Foreign))
	switch {
	case len(plan.Foreign) > 0:
		log.Warn("per-node records blocked by records this cluster does not own", "detail", foreignMessage(plan))
		c.syncs.WithLabelValues("node_records", "foreign").Inc()
	case brake.On():
		c.syncs.WithLabelValues("node_records", "braked").Inc()
	default:
		c.syncs.WithLabelValues("node_records", "synced").Inc()
	}
	var res reconcile.Result
	if !want.RecheckAt.IsZero() {
		res.RequeueAfter = max(want.RecheckAt.Sub(cl.Now), 10*time.Millisecond)
	}
	return res, nil
}

// nodeRecordsFailed turns a Cloudflare error met converging the per-node records into a log
// line and a requeue (they have no object to carry a condition).
func (c *Controller) nodeRecordsFailed(ctx context.Context, err error) (reconcile.Result, error) {
	o := c.classify(ctx, c.cfg.NodeRecordsZone, err)
	if o.result != "" {
		c.syncs.WithLabelValues("node_records", o.result).Inc()
	}
	if o.retry {
		return reconcile.Result{}, fmt.Errorf("node records in %s: %w", c.cfg.NodeRecordsZone, err)
	}
	if o.reason != "" && o.reason != v1.ReasonRateLimited {
		c.log.Warn("per-node records not converged", "zone", c.cfg.NodeRecordsZone, "reason", o.reason, "err", err)
	}
	return o.res, nil
}
