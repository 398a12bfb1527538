package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// CoPlacement restricts a Service sharing another's network namespace (spec.network) to the
// nodes of the owner: a new replica goes only where a ready owner replica runs, and a placed
// one stays only where the owner is still assigned (while the owner restarts its dependents
// keep their assignment; the node stops them meanwhile: fail closed).
type CoPlacement struct {
	Owner string
	// Ready: nodes with a ready replica of the owner (running, healthy, egress check passing).
	Ready map[string]bool
	// Assigned: nodes the owner is assigned to.
	Assigned map[string]bool
}

// AvoidFor is how long a node where a gateway's egress healing gave up (replica reason
// EgressFailed) takes no replica of that Service.
const AvoidFor = 10 * time.Minute

// indexNetworkOwner indexes Services by the Service whose namespace they share.
const indexNetworkOwner = "networkOwner"

func networkOwners(svc *v1.Service) []string {
	if o, ok := svc.Spec.NetworkOwner(); ok {
		return []string{o}
	}
	return nil
}

// coPlacement gathers the co-placement of svc (nil without spec.network).
func coPlacement(ctx context.Context, rd reader, snap *observed.Snapshot, svc *v1.Service) (*CoPlacement, error) {
	owner, ok := svc.Spec.NetworkOwner()
	if !ok {
		return nil, nil
	}
	cp := &CoPlacement{Owner: owner, Ready: map[string]bool{}, Assigned: map[string]bool{}}
	o, err := rd.Service(ctx, owner)
	if errors.Is(err, store.ErrNotFound) {
		return cp, nil // no owner: nowhere to go
	}
	if err != nil {
		return nil, fmt.Errorf("get namespace owner services/%s: %w", owner, err)
	}
	for _, a := range o.Status.Assignments {
		cp.Assigned[a.Node] = true
	}
	if snap != nil {
		for _, r := range snap.Replicas[owner] {
			if r.Ready() && cp.Assigned[r.Node] {
				cp.Ready[r.Node] = true
			}
		}
	}
	return cp, nil
}

// avoidance remembers, per Service, the nodes where its egress healing gave up, for AvoidFor.
// In memory: a new lease holder starts without it (the node reports EgressFailed again if the
// replica comes back there and fails again).
type avoidance struct {
	mu sync.Mutex
	// until per service and node; guarded by mu.
	until map[string]map[string]time.Time
}

// update records the nodes of service's replicas reported EgressFailed and returns the nodes
// to avoid now.
func (a *avoidance) update(service string, replicas []observed.Replica, now time.Time) map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.until == nil {
		a.until = map[string]map[string]time.Time{}
	}
	m := a.until[service]
	for _, r := range replicas {
		if r.Reason == v1.ReasonEgressFailed {
			if m == nil {
				m = map[string]time.Time{}
				a.until[service] = m
			}
			m[r.Node] = now.Add(AvoidFor)
		}
	}
	out := map[string]bool{}
	for n, t := range m {
		if now.Before(t) {
			out[n] = true
		} else {
			delete(m, n)
		}
	}
	if len(m) == 0 {
		delete(a.until, service)
	}
	return out
}
