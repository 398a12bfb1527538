package observed

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Snapshot is a View's state at one moment, grouped for lookups by service and by node name.
// It is shared between readers: never modify it or the slices and maps it holds.
type Snapshot struct {
	// Nodes are the view's nodes by name.
	Nodes map[string]Node
	// Replicas are the replicas of live nodes by service, sorted by index then node (the order
	// of View.Replicas).
	Replicas map[string][]Replica
}

// TakeSnapshot reads v once and groups what it holds.
func TakeSnapshot(v View) *Snapshot {
	s := &Snapshot{Nodes: map[string]Node{}, Replicas: map[string][]Replica{}}
	for _, n := range v.Nodes() {
		s.Nodes[n.Name] = n
	}
	for _, r := range v.Replicas() {
		s.Replicas[r.Service] = append(s.Replicas[r.Service], r)
	}
	return s
}

// Diff returns the services whose replicas differ between old and s, and the names of the nodes
// that differ (added, removed or changed), both sorted. A nil old differs in everything s holds.
// UpdatedAt alone is not a difference: gossip does not carry such a change either, and no
// reader decides anything on it.
func (s *Snapshot) Diff(old *Snapshot) (services, nodes []string) {
	if old == nil {
		old = &Snapshot{}
	}
	for name, rs := range s.Replicas {
		if !sameReplicas(rs, old.Replicas[name]) {
			services = append(services, name)
		}
	}
	for name := range old.Replicas {
		if _, ok := s.Replicas[name]; !ok {
			services = append(services, name)
		}
	}
	for name, n := range s.Nodes {
		if o, ok := old.Nodes[name]; !ok || !reflect.DeepEqual(n, o) {
			nodes = append(nodes, name)
		}
	}
	for name := range old.Nodes {
		if _, ok := s.Nodes[name]; !ok {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(services)
	slices.Sort(nodes)
	return services, nodes
}

func sameReplicas(a, b []Replica) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameReplica(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sameReplica compares every field but UpdatedAt.
func sameReplica(x, y Replica) bool {
	return x.Service == y.Service && x.Index == y.Index && x.Node == y.Node &&
		x.ContainerID == y.ContainerID && x.SpecHash == y.SpecHash && x.State == y.State &&
		x.Health == y.Health && maps.Equal(x.Ports, y.Ports) && x.ExitCode == y.ExitCode &&
		x.Restarts == y.Restarts && x.Reason == y.Reason && x.Message == y.Message
}

// Index keeps a Snapshot of a View, taken again at most once per change of the view, however
// many readers ask. It replaces "copy and sort View.Replicas() on every reconcile", which costs
// O(replicas) per object and O(objects × replicas) per view change.
type Index struct {
	view View

	mu sync.Mutex
	// guarded by mu:
	snap    *Snapshot
	changed <-chan struct{} // the view's Changed() taken before snap was read
}

// NewIndex returns an Index over v.
func NewIndex(v View) *Index { return &Index{view: v} }

// Snapshot returns the view's current state. It is shared: read it, never modify it.
func (ix *Index) Snapshot() *Snapshot {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.snap != nil {
		select {
		case <-ix.changed:
		default:
			return ix.snap
		}
	}
	// Changed is taken before the view is read: a change while reading closes it, and the next
	// call reads again.
	ix.changed = ix.view.Changed()
	ix.snap = TakeSnapshot(ix.view)
	return ix.snap
}

// OnChange calls fn once at once, then after every change of v, until ctx ends. It is meant to be
// the one "view changed" trigger of every reader (the scheduler, the status controller, the DNS
// controller and the Traefik provider use it). Observed state changes in
// bursts (a node publishing its replicas one by one, a gossip sync), so calls are throttled: the
// first change after a quiet period calls fn at once, and further changes within coalesce of
// the last call are folded into one call at the end of that interval. The view's Changed channel
// is taken before each call, so a change that arrives while fn runs causes another call: none
// is lost, and fn (which reads the view itself) always sees the latest state eventually. The
// first call lets a caller that diffs snapshots start from a state no change can slip past.
// The coalesce interval runs on clk (nil: the real clock), so a test can step a fake one.
func OnChange(ctx context.Context, clk clock.Clock, v View, coalesce time.Duration, fn func()) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	for {
		changed := v.Changed()
		last := clk.Now()
		fn()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		if wait := coalesce - clk.Since(last); wait > 0 {
			t := clk.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
	}
}
