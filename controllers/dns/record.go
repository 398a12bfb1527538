package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/store"
)

// The DNSRecord reconciler (KindDNSRecord): finalizer, validation, convergence of one record's
// RRset from the pure plan (plan.go), status.

// reconcileRecord converges one DNSRecord in the order every reconcile follows: gone, being
// deleted, finalizer, invalid spec, converge, status.
func (c *Controller) reconcileRecord(ctx context.Context, key Key) (reconcile.Result, error) {
	obj, err := c.st.Get(ctx, v1.KindDNSRecord, key.Name)
	if errors.Is(err, store.ErrNotFound) {
		c.forget(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get dnsrecords/%s: %w", key.Name, err)
	}
	rec := obj.(*v1.DNSRecord)
	owner := Owner(c.cfg.Cluster, rec.Metadata.Name)
	log := c.log.With("dnsrecord", rec.Metadata.Name)

	// Being deleted: remove what we own, then let go.
	if rec.Metadata.DeletionTimestamp != nil {
		if !slices.Contains(rec.Metadata.Finalizers, Finalizer) {
			return reconcile.Result{}, nil
		}
		if res, done, err := c.cleanup(ctx, rec, owner); !done {
			return res, err
		}
		cp := rec.DeepCopyObject().(*v1.DNSRecord)
		cp.Metadata.Finalizers = slices.DeleteFunc(cp.Metadata.Finalizers, func(f string) bool { return f == Finalizer })
		if _, err := c.st.Update(ctx, cp); err != nil {
			return c.storeError(fmt.Errorf("remove finalizer of dnsrecords/%s: %w", rec.Metadata.Name, err))
		}
		log.Info("records removed, finalizer dropped")
		c.forget(key)
		return reconcile.Result{}, nil
	}

	// Finalizer first, before anything exists outside.
	if !slices.Contains(rec.Metadata.Finalizers, Finalizer) {
		cp := rec.DeepCopyObject().(*v1.DNSRecord)
		cp.Metadata.Finalizers = append(cp.Metadata.Finalizers, Finalizer)
		updated, err := c.st.Update(ctx, cp)
		if err != nil {
			return c.storeError(fmt.Errorf("add finalizer to dnsrecords/%s: %w", rec.Metadata.Name, err))
		}
		rec = updated.(*v1.DNSRecord)
	}

	if errs := rec.Validate(); len(errs) > 0 {
		return c.writeStatus(ctx, rec, nil, v1.ConditionFalse, v1.ReasonInvalidSpec, errs.ToAggregate("dnsrecords", rec.Metadata.Name).Error(), false, reconcile.Result{})
	}

	cl, err := c.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	zoneID, err := c.p.ZoneID(ctx, rec.Spec.Zone)
	if err != nil {
		return c.providerFailed(ctx, rec, err)
	}
	have, err := c.p.ListRecords(ctx, zoneID, cloudflare.Filter{Name: strings.TrimSuffix(strings.ToLower(rec.Spec.Name), "."), Comment: owner, MatchAny: true})
	if err != nil {
		return c.providerFailed(ctx, rec, err)
	}
	return c.syncRecord(ctx, rec, cl, zoneID, have)
}

// syncRecord converges one (finalized, valid) DNSRecord given have, the zone's records at its
// name or with its owner comment, and writes its status. The result asks for no resync: the
// zone pass (reconcileZone) lists every zone each Resync and corrects drift for all records
// at once; it only asks to come back when the wanted records may change by themselves.
func (c *Controller) syncRecord(ctx context.Context, rec *v1.DNSRecord, cl Cluster, zoneID string, have []cloudflare.Record) (reconcile.Result, error) {
	key := Key{KindDNSRecord, rec.Metadata.Name}
	owner := Owner(c.cfg.Cluster, rec.Metadata.Name)
	log := c.log.With("dnsrecord", rec.Metadata.Name)
	want := WantedRecords(rec, cl, owner)
	var requeue reconcile.Result
	if !want.RecheckAt.IsZero() {
		requeue.RequeueAfter = max(want.RecheckAt.Sub(cl.Now), 10*time.Millisecond)
	}

	if want.NoTarget != "" {
		// Leave what is there; report it.
		kept := ownedBy(have, owner)
		c.record(key, want.Digest(), 0, 0)
		c.syncs.WithLabelValues("record", "no_target").Inc()
		return c.writeStatus(ctx, rec, kept, v1.ConditionFalse, v1.ReasonNoTarget, want.NoTarget, true, requeue)
	}
	records, braked := want.Records, ""
	if rec.Spec.Target != nil && len(rec.Spec.Target.NodeSelector) > 0 {
		if b := cl.brake(); b.on {
			// More than half the nodes look lost: add what matches, remove nothing.
			records = KeepOwned(records, have, owner)
			if held := len(records) - len(want.Records); held > 0 {
				c.brakeHeld(log, "selector record", b.lost, b.total, held)
				braked = fmt.Sprintf("; disruption brake: %d of %d nodes look lost, %d address(es) of theirs kept", b.lost, b.total, held)
			}
		}
	}

	plan := Compute(records, have, owner)
	result, err := c.apply(ctx, zoneID, plan, log)
	if err != nil {
		c.record(key, "", plan.Changes()+len(plan.Blocked), len(plan.Foreign))
		return c.providerFailed(ctx, rec, err)
	}
	c.record(key, want.Digest(), len(plan.Blocked), len(plan.Foreign))
	c.written(rec.Metadata.Name, plan)
	if len(plan.Foreign) > 0 {
		c.syncs.WithLabelValues("record", "foreign").Inc()
		return c.writeStatus(ctx, rec, result, v1.ConditionFalse, v1.ReasonForeignRecord, foreignMessage(plan), true, requeue)
	}
	c.syncs.WithLabelValues("record", "synced").Inc()
	return c.writeStatus(ctx, rec, result, v1.ConditionTrue, v1.ReasonSynced, fmt.Sprintf("%d record(s) in Cloudflare%s", len(result), braked), true, requeue)
}

// brakeHeld says that the disruption brake kept held records from being deleted.
func (c *Controller) brakeHeld(log *slog.Logger, what string, lost, total, held int) {
	c.brakedDeletes.Add(float64(held))
	log.Warn("disruption brake: more than half the nodes look lost, deleting no DNS record",
		"records", what, "lostNodes", lost, "nodes", total, "heldRecords", held)
}

func foreignMessage(p Plan) string {
	parts := make([]string, 0, len(p.Foreign))
	for _, f := range p.Foreign {
		parts = append(parts, fmt.Sprintf("%s %s %s (id %s)", f.Type, f.Name, f.Content, f.ID))
	}
	msg := "records not owned by this cluster are in the way, left alone: " + strings.Join(parts, ", ")
	if len(p.Blocked) > 0 {
		msg += fmt.Sprintf("; %d wanted record(s) not written", len(p.Blocked))
	}
	return msg
}

// cleanup deletes every record owner owns in the DNSRecord's zone. done is false when the
// caller must return res, err.
func (c *Controller) cleanup(ctx context.Context, rec *v1.DNSRecord, owner string) (res reconcile.Result, done bool, err error) {
	zoneID, err := c.p.ZoneID(ctx, rec.Spec.Zone)
	if errors.Is(err, cloudflare.ErrZoneNotFound) {
		return reconcile.Result{}, true, nil // nothing of ours can be left in a zone that is gone
	}
	if err != nil {
		res, err = c.providerFailed(ctx, rec, err)
		return res, false, err
	}
	have, err := c.p.ListRecords(ctx, zoneID, cloudflare.Filter{Comment: owner})
	if err == nil {
		_, err = c.apply(ctx, zoneID, Plan{Delete: ownedBy(have, owner)}, c.log.With("dnsrecord", rec.Metadata.Name))
	}
	if err != nil {
		res, err = c.providerFailed(ctx, rec, err)
		return res, false, err
	}
	return reconcile.Result{}, true, nil
}

// writeStatus sets the Synced condition (and, when synced, the records and the sync time) and
// writes status if anything changed. records nil keeps the records last reported.
func (c *Controller) writeStatus(ctx context.Context, rec *v1.DNSRecord, records []cloudflare.Record, st v1.ConditionStatus, reason v1.ConditionReason, msg string, synced bool, res reconcile.Result) (reconcile.Result, error) {
	if !c.leader() {
		return reconcile.Result{RequeueAfter: c.cfg.Resync}, nil
	}
	cp := rec.DeepCopyObject().(*v1.DNSRecord)
	now := c.clock.Now().UTC()
	s := &cp.Status
	changed := v1.SetCondition(&s.Conditions, v1.Condition{Type: v1.DNSSynced, Status: st, Reason: reason, Message: msg, LastTransitionTime: now})
	if synced {
		prs := make([]v1.ProviderRecord, 0, len(records))
		for _, r := range records {
			prs = append(prs, v1.ProviderRecord{ID: r.ID, Content: r.Content})
		}
		if !slices.Equal(prs, s.Records) {
			s.Records, changed = prs, true
		}
		// A record that stays converged would otherwise cost a store write at every zone
		// resync (1,000 records: 1,000 raft writes a minute) only to move lastSyncTime.
		if changed || s.LastSyncTime == nil || now.Sub(*s.LastSyncTime) >= c.cfg.StatusRefresh || s.LastSyncTime.After(now) {
			s.LastSyncTime, changed = &now, true
		}
	}
	if s.ObservedGeneration != rec.Metadata.Generation {
		s.ObservedGeneration, changed = rec.Metadata.Generation, true
	}
	if !changed {
		return res, nil
	}
	if _, err := c.st.UpdateStatus(ctx, cp); err != nil {
		return c.storeError(fmt.Errorf("write status of dnsrecords/%s: %w", rec.Metadata.Name, err))
	}
	return res, nil
}
