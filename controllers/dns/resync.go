package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/store"
)

// The drift resync. Records edited or deleted by hand in Cloudflare are found by listing: a
// list per record would cost one call per record per Resync (1,000 records: 1,000 calls, the
// whole 5-minute budget), so instead every Resync each zone in use is listed once, paginated,
// and every record in it is converged from that one listing. Calls per resync are
// zones × ceil(records in the zone / Cloudflare page size), plus the writes that correct drift.

func normalizeZone(z string) string { return strings.TrimSuffix(strings.ToLower(z), ".") }

// reconcileResync enqueues one zone pass per zone in use (the DNSRecords' zones and the
// per-node records' zone) and comes back after Resync. It makes no API call.
func (c *Controller) reconcileResync(ctx context.Context) (reconcile.Result, error) {
	objs, _, err := c.st.List(ctx, v1.KindDNSRecord, v1.Selector{}, store.Stale())
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("list dnsrecords: %w", err)
	}
	var zones []string
	if c.cfg.NodeRecordsZone != "" {
		zones = append(zones, c.cfg.NodeRecordsZone)
	}
	for _, o := range objs {
		if z := normalizeZone(o.(*v1.DNSRecord).Spec.Zone); z != "" && !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	c.mu.Lock()
	enqueue := c.enqueue
	c.mu.Unlock()
	if enqueue != nil {
		for _, z := range zones {
			enqueue(Key{KindZone, z}, 0)
		}
	}
	return reconcile.Result{RequeueAfter: c.cfg.Resync}, nil
}

// reconcileZone lists zone once and converges from that listing every DNSRecord in it that is
// finalized, valid and not being deleted (the others wait for their own reconcile), and the
// per-node records when they live there. A record whose convergence fails or must come back
// soon is enqueued under its own key, so one bad record neither fails nor relists the zone.
func (c *Controller) reconcileZone(ctx context.Context, zone string) (reconcile.Result, error) {
	objs, _, err := c.st.List(ctx, v1.KindDNSRecord, v1.Selector{}, store.Stale())
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("list dnsrecords: %w", err)
	}
	var recs []*v1.DNSRecord
	for _, o := range objs {
		rec := o.(*v1.DNSRecord)
		if normalizeZone(rec.Spec.Zone) != zone || rec.Metadata.DeletionTimestamp != nil ||
			!slices.Contains(rec.Metadata.Finalizers, Finalizer) || len(rec.Validate()) > 0 {
			continue
		}
		recs = append(recs, rec)
	}
	nodeZone := c.cfg.NodeRecordsZone == zone
	if len(recs) == 0 && !nodeZone {
		return reconcile.Result{}, nil // no longer in use: the next resync pass does not enqueue it
	}
	cl, err := c.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	zoneID, err := c.p.ZoneID(ctx, zone)
	if err == nil {
		var have []cloudflare.Record
		if have, err = c.p.ListRecords(ctx, zoneID, cloudflare.Filter{}); err == nil {
			c.syncZone(ctx, cl, zoneID, have, recs, nodeZone)
			c.syncs.WithLabelValues("zone", "synced").Inc()
			return reconcile.Result{RequeueAfter: c.cfg.Resync}, nil
		}
	}
	// The zone could not be listed: every record in it says why, and the zone is retried as
	// classify says (a wait for a 429, the resync for a missing zone or a refused token,
	// backoff otherwise).
	o := c.classify(ctx, zone, err)
	if o.result != "" {
		c.syncs.WithLabelValues("zone", o.result).Inc()
	}
	if o.reason != "" {
		for _, rec := range recs {
			if _, serr := c.writeStatus(ctx, rec, nil, v1.ConditionFalse, o.reason, o.message, false, reconcile.Result{}); serr != nil {
				c.log.Warn("write status", "dnsrecord", rec.Metadata.Name, "err", serr)
			}
		}
	}
	if o.retry {
		return reconcile.Result{}, fmt.Errorf("resync zone %s: %w", zone, err)
	}
	return o.res, nil
}

// syncZone converges recs and (nodeZone) the per-node records from have, the whole zone.
func (c *Controller) syncZone(ctx context.Context, cl Cluster, zoneID string, have []cloudflare.Record, recs []*v1.DNSRecord, nodeZone bool) {
	c.mu.Lock()
	enqueue := c.enqueue
	c.mu.Unlock()
	again := func(k Key, res reconcile.Result, err error) {
		if err != nil {
			c.log.Warn("resync: converge failed, retrying on its own", "key", k.String(), "err", err)
		}
		if enqueue != nil && (err != nil || (res.RequeueAfter > 0 && res.RequeueAfter < c.cfg.Resync)) {
			enqueue(k, res.RequeueAfter)
		}
	}
	// Index the listing by name and by owner comment, so that each record gets what its own
	// list (name=<name> OR comment=<owner>) would have returned, without a quadratic scan.
	byName := map[string][]int{}
	byComment := map[string][]int{}
	for i, h := range have {
		byName[normalizeZone(h.Name)] = append(byName[normalizeZone(h.Name)], i)
		byComment[h.Comment] = append(byComment[h.Comment], i)
	}
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		idx := append(append([]int(nil), byName[normalizeZone(rec.Spec.Name)]...), byComment[Owner(c.cfg.Cluster, rec.Metadata.Name)]...)
		slices.Sort(idx)
		idx = slices.Compact(idx)
		sub := make([]cloudflare.Record, len(idx))
		for j, i := range idx {
			sub[j] = have[i]
		}
		res, err := c.syncRecord(ctx, rec, cl, zoneID, sub)
		again(Key{KindDNSRecord, rec.Metadata.Name}, res, err)
	}
	if nodeZone {
		res, err := c.syncNodeRecords(ctx, cl, zoneID, have)
		again(nodeRecordsKey, res, err)
	}
}
