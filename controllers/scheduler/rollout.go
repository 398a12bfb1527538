package scheduler

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// ErrNoPreviousRevision is returned by RolloutUndo when the Service has never been updated.
var ErrNoPreviousRevision = errors.New("scheduler: no previous revision to return to")

// UndoStore is the part of store.Store RolloutUndo uses.
type UndoStore interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	Update(ctx context.Context, obj v1.Object) (v1.Object, error)
}

// RolloutUndo returns Service name to the spec it ran before its current revision (as
// `kubectl rollout undo` does): the container-defining spec comes back; replicas, routes,
// placement and the update strategy stay as they are. The scheduler then rolls it out like any
// other update, and the revision undone becomes the previous one (a second undo goes forward
// again). Secrets stay as they are: the replicas of the old spec read their current values (a
// Secret change alone is not a revision undo goes back over; see revisionHash). The write is a compare-and-swap, retried on conflict.
func RolloutUndo(ctx context.Context, st UndoStore, name string) error {
	for attempt := 0; ; attempt++ {
		obj, err := st.Get(ctx, v1.KindService, name)
		if err != nil {
			return fmt.Errorf("rollout undo services/%s: %w", name, err)
		}
		svc := obj.DeepCopyObject().(*v1.Service)
		prev := svc.Status.PreviousRevision
		if prev == nil {
			return fmt.Errorf("rollout undo services/%s: %w", name, ErrNoPreviousRevision)
		}
		if spechash.Of(&svc.Spec) == spechash.SpecPart(prev.SpecHash) {
			return nil // already there
		}
		p := prev.Spec
		sp := &svc.Spec
		sp.Image, sp.Command, sp.Args, sp.Env = p.Image, p.Command, p.Args, p.Env
		sp.Ports, sp.HealthCheck, sp.Networks, sp.Volumes, sp.Resources = p.Ports, p.HealthCheck, p.Networks, p.Volumes, p.Resources
		// Every other field the spec hash covers (pkg/spechash): host access and the shared
		// network namespace define the container too.
		sp.Privileged, sp.HostNetwork, sp.HostPID, sp.CapAdd, sp.CapDrop = p.Privileged, p.HostNetwork, p.HostPID, p.CapAdd, p.CapDrop
		sp.HostAccess, sp.Network = p.HostAccess, p.Network
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
