package lease

import (
	"context"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/events"
)

// eventComponent names leases in the Events they report.
const eventComponent = "lease"

// Observe wraps lead (nil: nothing to run) so that the Lease's Events say when node started and
// stopped leading: LeaseAcquired when the term starts; when it ends, LeaseReleased if parent
// (the campaign's context) ended, the node giving the lease up, else LeaseLost (renewal failed,
// or would have by the deadline). A term lasts until its context ends, even when lead returns
// earlier: the node holds the lease all that time. Nil rec: no Events.
func Observe(parent context.Context, rec *events.Recorder, lease, node string, lead func(ctx context.Context)) func(ctx context.Context) {
	return func(ctx context.Context) {
		ref := events.Ref(v1.KindLease, lease)
		rec.Eventf(ref, v1.EventNormal, v1.EventLeaseAcquired, eventComponent, "node %s acquired the lease", node)
		if lead != nil {
			lead(ctx)
		}
		<-ctx.Done()
		if parent.Err() != nil {
			rec.Eventf(ref, v1.EventNormal, v1.EventLeaseReleased, eventComponent, "node %s released the lease", node)
			return
		}
		rec.Eventf(ref, v1.EventWarning, v1.EventLeaseLost, eventComponent, "node %s lost the lease: it could not renew it in time", node)
	}
}
