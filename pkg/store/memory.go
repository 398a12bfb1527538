package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Memory is a Store in memory, with exactly the semantics of the replicated store (it applies
// the same Mutations through Apply). It persists nothing.
type Memory struct {
	now     func() time.Time
	history *History

	mu sync.Mutex
	// guarded by mu:
	objects mapTable
	rev     int64
	closed  bool
}

var _ Store = (*Memory)(nil)

// MemoryConfig configures a Memory store. The zero value takes every default.
type MemoryConfig struct {
	// Clock stamps creation and deletion timestamps: any k8s.io/utils/clock clock (not imported
	// here: cmd/ctl links this package and must not link k8s.io/utils). Default the wall clock.
	Clock interface{ Now() time.Time }
	// History is how many events watches can replay. Default 10000.
	History int
}

// NewMemory returns an empty in-memory store. cfg is optional: NewMemory() takes the defaults,
// NewMemory(MemoryConfig{...}) sets them (only the first is read).
func NewMemory(cfg ...MemoryConfig) *Memory {
	var c MemoryConfig
	if len(cfg) > 0 {
		c = cfg[0]
	}
	now := time.Now
	if c.Clock != nil {
		now = c.Clock.Now
	}
	return &Memory{now: now, objects: mapTable{}, history: NewHistory(c.History, 0)}
}

type mapTable map[v1.Key][]byte

func (t mapTable) Get(kind, name string) ([]byte, error) {
	return t[v1.Key{Kind: kind, Name: name}], nil
}
func (t mapTable) Put(kind, name string, b []byte) error {
	t[v1.Key{Kind: kind, Name: name}] = b
	return nil
}
func (t mapTable) Delete(kind, name string) error {
	delete(t, v1.Key{Kind: kind, Name: name})
	return nil
}

// NewUID returns a random object uid.
func NewUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (m *Memory) write(ctx context.Context, op Op, obj v1.Object) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mut, err := NewMutation(op, obj, m.now(), NewUID())
	if err != nil {
		return nil, err
	}
	return m.applyMutation(mut)
}

// WriteMutation applies a Mutation as it arrived from a proposer, e.g. one of a newer version
// whose object carries fields this version does not know. It implements storetest.MutationWriter.
func (m *Memory) WriteMutation(ctx context.Context, mut Mutation) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.applyMutation(mut)
}

func (m *Memory) applyMutation(mut Mutation) (v1.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	res, err := Apply(m.objects, m.rev+1, mut)
	if err != nil {
		return nil, err
	}
	if res.Event != nil {
		m.rev++
		m.history.Append(*res.Event)
	}
	return DecodeKind(mut.Kind, res.Object)
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, kind, name string, _ ...ReadOption) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	b := m.objects[v1.Key{Kind: kind, Name: name}]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if b == nil {
		return nil, fmt.Errorf("%s: %w", v1.Key{Kind: kind, Name: name}, ErrNotFound)
	}
	return DecodeKind(kind, b)
}

// List implements Store.
func (m *Memory) List(ctx context.Context, kind string, sel v1.Selector, _ ...ReadOption) ([]v1.Object, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	var raw [][]byte
	for k, b := range m.objects {
		if k.Kind == kind {
			raw = append(raw, b)
		}
	}
	rev, closed := m.rev, m.closed
	m.mu.Unlock()
	if closed {
		return nil, 0, ErrClosed
	}
	out, err := decodeSelected(kind, raw, sel)
	return out, rev, err
}

// decodeSelected decodes objects of kind, keeps those sel matches and sorts them by name.
func decodeSelected(kind string, raw [][]byte, sel v1.Selector) ([]v1.Object, error) {
	out := make([]v1.Object, 0, len(raw))
	for _, b := range raw {
		o, err := DecodeKind(kind, b)
		if err != nil {
			return nil, err
		}
		if sel.Matches(o.GetMetadata().Labels) {
			out = append(out, o)
		}
	}
	SortByName(out)
	return out, nil
}

// SortByName sorts objects by name.
func SortByName(objs []v1.Object) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].GetMetadata().Name < objs[j].GetMetadata().Name })
}

// Create implements Store.
func (m *Memory) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return m.write(ctx, OpCreate, obj)
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return m.write(ctx, OpUpdate, obj)
}

// UpdateStatus implements Store.
func (m *Memory) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return m.write(ctx, OpUpdateStatus, obj)
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.applyMutation(Mutation{Op: OpDelete, Kind: kind, Name: name, ResourceVersion: resourceVersion, Now: m.now().UTC()})
}

// Watch implements Store.
func (m *Memory) Watch(ctx context.Context, kind string, fromRev int64) (<-chan Event, error) {
	return m.history.Watch(ctx, kind, fromRev)
}

// Revision implements Store.
func (m *Memory) Revision(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, nil
}

// Compact implements Store.
func (m *Memory) Compact(_ context.Context, rev int64) error {
	m.history.Compact(rev)
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.history.Close()
	return nil
}
