package dns

import (
	"context"
	"slices"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Run reconciles until ctx ends: every DNSRecord at start and when its spec changes or it is
// being deleted, every zone in use (one listing each) every Resync, and the targets pass after nodes, leases or the gossip view
// change. The agent calls it inside the "controller" Lease's leader function, so ctx ends when
// leadership does; Run can be called again for the next term and starts from scratch.
func (c *Controller) Run(ctx context.Context, opts ctrl.Options) {
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	if opts.Clock == nil {
		opts.Clock = c.clock
	}
	loop := ctrl.New[Key]("dns", c, opts)
	c.mu.Lock()
	c.applied, c.gens = map[Key]string{}, map[string]genSeen{}
	c.enqueue = func(k Key, d time.Duration) {
		if d <= 0 {
			loop.Enqueue(k)
		} else {
			loop.EnqueueAfter(k, d)
		}
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.enqueue = nil
		c.mu.Unlock()
	}()

	coalesced := func(store.Event) { loop.EnqueueAfter(targetsKey, c.cfg.Coalesce) }
	go ctrl.ListWatch(ctx, c.st, v1.KindDNSRecord, c.log, func(ev store.Event) {
		if k, ok := c.recordChanged(ev); ok {
			loop.Enqueue(k)
		}
	})
	go ctrl.ListWatch(ctx, c.st, v1.KindNode, c.log, coalesced)
	go ctrl.ListWatch(ctx, c.st, v1.KindLease, c.log, coalesced)
	if c.view != nil {
		// The workqueue's EnqueueAfter coalesces: one targets pass per Coalesce however often
		// the view changes.
		go observed.OnChange(ctx, c.clock, c.view, 0, func() { loop.EnqueueAfter(targetsKey, c.cfg.Coalesce) })
	}
	if c.cfg.NodeRecordsZone != "" {
		loop.Enqueue(nodeRecordsKey)
	}
	// The first zone pass runs at once: it converges, one listing per zone, every record this
	// term has not seen change (recordChanged leaves those to it), so that taking over costs
	// zones × pages calls rather than one per record.
	loop.Enqueue(resyncKey)
	loop.Run(ctx)
}

// recordChanged reports whether a DNSRecord event needs a reconcile of its own: a new record
// (unless settled: the zone pass converges it), a new spec (generation), deletion starting or
// done. Our own status writes do not.
func (c *Controller) recordChanged(ev store.Event) (Key, bool) {
	md := ev.Object.GetMetadata()
	k := Key{KindDNSRecord, md.Name}
	now := genSeen{generation: md.Generation, deleting: md.DeletionTimestamp != nil}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Type == store.Deleted {
		delete(c.gens, md.Name)
		return k, true
	}
	old, seen := c.gens[md.Name]
	c.gens[md.Name] = now
	if !seen {
		return k, !settled(ev.Object)
	}
	return k, old != now
}

// settled reports whether obj is a DNSRecord whose current generation a previous reconcile
// already converged (finalizer on, not being deleted, status observed this generation): at the
// start of a term the zone pass checks those, one listing per zone, instead of a list each.
func settled(obj v1.Object) bool {
	d, ok := obj.(*v1.DNSRecord)
	return ok && d.Metadata.DeletionTimestamp == nil && slices.Contains(d.Metadata.Finalizers, Finalizer) &&
		d.Status.ObservedGeneration == d.Metadata.Generation && v1.FindCondition(d.Status.Conditions, v1.DNSSynced) != nil
}
