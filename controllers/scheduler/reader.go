package scheduler

import (
	"context"
	"fmt"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// reader is where Reconcile reads the store: its Service, the Node objects and the load of the
// other Services. What it returns is shared: read-only.
type reader interface {
	Service(ctx context.Context, name string) (*v1.Service, error)
	Nodes(ctx context.Context) ([]*v1.Node, error)
	// LoadExcept counts the assignments per node of every Service but the one named.
	LoadExcept(ctx context.Context, service string) (map[string]int, error)
	// HostPortHolders returns the Services whose replicas hold one of the host ports keys.
	HostPortHolders(ctx context.Context, keys []string) ([]*v1.Service, error)
	// Secret returns the Secret named name, its values blanked (keys and metadata are all
	// the scheduler needs), or an error wrapping store.ErrNotFound.
	Secret(ctx context.Context, name string) (*v1.Secret, error)
	// Config returns the Config named name, its values replaced by digests (configDigests),
	// or an error wrapping store.ErrNotFound.
	Config(ctx context.Context, name string) (*v1.Config, error)
}

// cacheReader reads the caches of Run: O(nodes) per reconcile.
type cacheReader struct {
	services *ctrl.Cache[*v1.Service]
	nodes    *ctrl.Cache[*v1.Node]
	secrets  *ctrl.Cache[*v1.Secret] // fed by secretVersions: no values
	configs  *ctrl.Cache[*v1.Config] // fed by configDigests: digests only
}

func (r cacheReader) Secret(_ context.Context, name string) (*v1.Secret, error) {
	if sec, ok := r.secrets.Get(name); ok {
		return sec, nil
	}
	return nil, fmt.Errorf("secrets/%s: %w", name, store.ErrNotFound)
}

func (r cacheReader) Service(_ context.Context, name string) (*v1.Service, error) {
	if svc, ok := r.services.Get(name); ok {
		return svc, nil
	}
	return nil, fmt.Errorf("services/%s: %w", name, store.ErrNotFound)
}

func (r cacheReader) Nodes(context.Context) ([]*v1.Node, error) { return r.nodes.List(), nil }

func (r cacheReader) LoadExcept(_ context.Context, service string) (map[string]int, error) {
	return r.services.Counts(indexAssignedNode, service), nil
}

func (r cacheReader) HostPortHolders(_ context.Context, keys []string) ([]*v1.Service, error) {
	seen := map[string]bool{}
	var out []*v1.Service
	for _, k := range keys {
		for _, n := range r.services.Indexed(indexHostPort, k) {
			if svc, ok := r.services.Get(n); ok && !seen[n] {
				seen[n] = true
				out = append(out, svc)
			}
		}
	}
	return out, nil
}

// storeReader reads the store: a linearizable Get of the Service, and lists that decode every
// Service and Node, O(Services) per reconcile. Reconcile uses it only when called outside Run
// (tests, tools; hack/bench-controllers times it as the old path).
type storeReader struct {
	st  Store
	key []byte // secret digest key
}

func (r storeReader) Service(ctx context.Context, name string) (*v1.Service, error) {
	obj, err := r.st.Get(ctx, v1.KindService, name)
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Service), nil
}

func (r storeReader) Secret(ctx context.Context, name string) (*v1.Secret, error) {
	obj, err := r.st.Get(ctx, v1.KindSecret, name, store.Stale())
	if err != nil {
		return nil, err
	}
	sec, ok := blankSecret(obj, r.key).(*v1.Secret)
	if !ok {
		return nil, fmt.Errorf("secrets/%s: got a %T", name, obj)
	}
	return sec, nil
}

func (r storeReader) Nodes(ctx context.Context) ([]*v1.Node, error) {
	objs, _, err := r.st.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	out := make([]*v1.Node, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*v1.Node))
	}
	return out, nil
}

func (r storeReader) HostPortHolders(ctx context.Context, keys []string) ([]*v1.Service, error) {
	objs, _, err := r.st.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out []*v1.Service
	for _, o := range objs {
		svc := o.(*v1.Service)
		for _, k := range svc.Spec.HostPorts() {
			if want[k] {
				out = append(out, svc)
				break
			}
		}
	}
	return out, nil
}

func (r storeReader) LoadExcept(ctx context.Context, service string) (map[string]int, error) {
	objs, _, err := r.st.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	load := map[string]int{}
	for _, o := range objs {
		if o.GetMetadata().Name == service {
			continue
		}
		for _, a := range o.(*v1.Service).Status.Assignments {
			load[a.Node]++
		}
	}
	return load, nil
}

func (s *Scheduler) reader() reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rd == nil {
		return storeReader{st: s.cfg.Store, key: s.cfg.secretDigestKey()}
	}
	return s.rd
}

// snapshot is the observed view Reconcile reads: the one of the last wake-up while Run runs,
// else the index's (taken again after any change); nil without a View.
func (s *Scheduler) snapshot() *observed.Snapshot {
	if s.index == nil {
		return nil
	}
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap != nil {
		return snap
	}
	return s.index.Snapshot()
}

// setSnapshot sets the snapshot reconciles read while Run runs (a wake-up that ends after Run
// has returned sets nothing).
func (s *Scheduler) setSnapshot(snap *observed.Snapshot) {
	s.mu.Lock()
	if s.rd != nil || snap == nil {
		s.snap = snap
	}
	s.mu.Unlock()
}

func (s *Scheduler) setReader(rd reader) {
	s.mu.Lock()
	s.rd = rd
	s.mu.Unlock()
}
