package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// ErrNoPreviousRevision is returned by RolloutUndoTo when the Service has never been updated.
var ErrNoPreviousRevision = errors.New("scheduler: no previous revision to return to")

// ErrRevisionNotFound is returned by RolloutUndoTo for a revision number the Service's history
// does not hold.
var ErrRevisionNotFound = errors.New("scheduler: no such revision in the history")

// DefaultRevisionHistoryLimit is how many revisions before the current one a Service keeps.
const DefaultRevisionHistoryLimit = 10

// UndoStore is the part of store.Store RolloutUndoTo uses.
type UndoStore interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	Update(ctx context.Context, obj v1.Object) (v1.Object, error)
}

// RolloutUndoTo returns Service name to the spec it ran at revision number rev of
// status.revisionHistory, or with rev 0 to the spec it ran before its current revision (as
// `kubectl rollout undo` does): the container-defining spec comes back; replicas, routes,
// placement and the update strategy stay as they are. The scheduler then rolls it out like any
// other update, and the revision undone becomes the previous one (a second undo goes forward
// again). Secrets stay as they are: the replicas of the old spec read their current values (a
// Secret change alone is not a revision undo goes back over; see revisionHash). Asking for the
// current revision changes nothing. The write is a compare-and-swap, retried on conflict.
func RolloutUndoTo(ctx context.Context, st UndoStore, name string, rev int64) error {
	for attempt := 0; ; attempt++ {
		obj, err := st.Get(ctx, v1.KindService, name)
		if err != nil {
			return fmt.Errorf("rollout undo services/%s: %w", name, err)
		}
		svc := obj.DeepCopyObject().(*v1.Service)
		target, err := undoTarget(svc, rev)
		if err != nil {
			return fmt.Errorf("rollout undo services/%s: %w", name, err)
		}
		if target == nil || spechash.Of(&svc.Spec) == spechash.SpecPart(target.SpecHash) {
			return nil // already there
		}
		restoreContainerSpec(&svc.Spec, &target.Spec)
		_, err = st.Update(ctx, svc)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("rollout undo services/%s: %w", name, err)
		}
		return nil
	}
}

// undoTarget finds the revision undo returns to; nil when rev is the current one.
func undoTarget(svc *v1.Service, rev int64) (*v1.ServiceRevision, error) {
	st := &svc.Status
	if rev == 0 {
		if st.PreviousRevision == nil {
			return nil, ErrNoPreviousRevision
		}
		return st.PreviousRevision, nil
	}
	if rev < 0 {
		return nil, fmt.Errorf("%w: revision %d: revisions are numbered from 1", ErrRevisionNotFound, rev)
	}
	if cur := st.CurrentRevision; cur != nil && cur.Revision == rev {
		return nil, nil
	}
	for i := range st.RevisionHistory {
		if st.RevisionHistory[i].Revision == rev {
			return &st.RevisionHistory[i], nil
		}
	}
	var have []string
	for _, r := range st.RevisionHistory {
		have = append(have, strconv.FormatInt(r.Revision, 10))
	}
	if cur := st.CurrentRevision; cur != nil {
		have = append(have, strconv.FormatInt(cur.Revision, 10)+" (current)")
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("%w: revision %d: the Service has no revision history yet", ErrRevisionNotFound, rev)
	}
	return nil, fmt.Errorf("%w: revision %d (kept: %s)", ErrRevisionNotFound, rev, strings.Join(have, ", "))
}

// restoreContainerSpec copies every field the spec hash covers (pkg/spechash) from p to sp:
// host access, the shared network namespace and restartedAt define the container too.
func restoreContainerSpec(sp, p *v1.ServiceSpec) {
	sp.Image, sp.Command, sp.Args, sp.Env = p.Image, p.Command, p.Args, p.Env
	sp.Ports, sp.HealthCheck, sp.Networks, sp.Volumes, sp.Resources = p.Ports, p.HealthCheck, p.Networks, p.Volumes, p.Resources
	sp.Privileged, sp.HostNetwork, sp.HostPID, sp.CapAdd, sp.CapDrop = p.Privileged, p.HostNetwork, p.HostPID, p.CapAdd, p.CapDrop
	sp.HostAccess, sp.Network = p.HostAccess, p.Network
	sp.RestartedAt = p.RestartedAt
}

// historyEntry is what status.revisionHistory keeps of a revision: the container-defining part
// of its spec (what undo restores), not replicas, routes, placement or the update strategy,
// so that ten revisions do not weigh ten whole specs on every status write.
func historyEntry(r v1.ServiceRevision) v1.ServiceRevision {
	r.Spec.Replicas, r.Spec.Routes, r.Spec.Placement, r.Spec.Update = nil, nil, nil, nil
	return r
}

// pushRevision makes rev (a new spec) the current revision of st: the current one becomes the
// previous one and the newest entry of the history, which keeps at most limit entries (the
// oldest go first). An entry of the same spec as rev (an undo) leaves the history: rev takes
// its place on top with a new number. Revisions written before they were numbered get numbers
// here (previous 1, current 2).
func pushRevision(st *v1.ServiceStatus, rev v1.ServiceRevision, limit int, now time.Time) {
	if limit <= 0 {
		limit = DefaultRevisionHistoryLimit
	}
	cur, prev := st.CurrentRevision, st.PreviousRevision
	hist := append([]v1.ServiceRevision(nil), st.RevisionHistory...)
	var n int64
	for _, r := range hist {
		n = max(n, r.Revision)
	}
	for _, r := range []*v1.ServiceRevision{prev, cur} {
		if r != nil {
			n = max(n, r.Revision)
		}
	}
	if len(hist) == 0 && prev != nil {
		// A Service from before the history: its previous revision starts it.
		if prev.Revision == 0 {
			n++
			prev.Revision = n
		}
		hist = append(hist, historyEntry(*prev))
	}
	if cur != nil {
		if cur.Revision == 0 {
			n++
			cur.Revision = n
		}
		hist = append(hist, historyEntry(*cur))
	}
	kept := hist[:0]
	for _, r := range hist {
		if spechash.SpecPart(r.SpecHash) != spechash.SpecPart(rev.SpecHash) {
			kept = append(kept, r)
		}
	}
	if len(kept) > limit {
		kept = kept[len(kept)-limit:]
	}
	if len(kept) == 0 {
		kept = nil
	}
	t := now.UTC()
	rev.Revision, rev.CreatedAt = n+1, &t
	st.PreviousRevision, st.CurrentRevision, st.RevisionHistory = cur, &rev, kept
}
