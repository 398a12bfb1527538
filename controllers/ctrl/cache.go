package ctrl

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Cache is an informer: an in-memory map of the decoded objects of one kind, kept current by
// ListWatchInto, with indexes maintained from the same events. Controllers read it instead of
// listing the store, so that a reconcile costs what its own object costs, not what the whole
// store costs (listing decodes every object: at 1000 Services a scheduler pass over every
// Service was O(N²) decodes).
//
// Everything a Cache hands out (Get, List, the objects passed to handlers) is shared with every
// other reader and with the cache itself: never modify it. Deep-copy before changing anything
// (DeepCopyObject), and write through the store with compare-and-swap on the resourceVersion
// as usual: the cache may lag the store by the watch's latency, and a stale read then ends in
// a conflict and a short requeue, never in a lost update.
type Cache[T v1.Object] struct {
	src     Source
	kind    string
	log     *slog.Logger
	handler Handler[T] // set once by NewCache
	synced  chan struct{}

	mu sync.RWMutex
	// guarded by mu:
	items   map[string]T
	rev     int64
	indexes map[string]*index[T] // the set is fixed by NewCache; their contents change
	running bool
}

// Handler is told of every change the cache applies, after the cache holds it. Any field may be
// nil. Handlers run one at a time on the cache's goroutine, in revision order; they should only
// enqueue keys, as a slow handler delays the cache. After a relist, OnUpdate is called for every
// object that is still there, changed or not (old and new then share a resourceVersion when
// nothing changed), as client-go's informers do on a resync.
type Handler[T v1.Object] struct {
	OnAdd    func(obj T)
	OnUpdate func(old, obj T)
	OnDelete func(obj T)
}

// IndexFunc returns the values obj is indexed under. A value may be returned more than once:
// an index counts, per value, how many times the objects of the cache return it (for Services
// by assigned node, that is the load of each node).
type IndexFunc[T v1.Object] func(obj T) []string

type index[T v1.Object] struct {
	fn     IndexFunc[T]
	byName map[string][]string       // object name → values it returned
	counts map[string]map[string]int // value → object name → count
	totals map[string]int            // value → count over all objects
}

// CacheConfig configures a Cache.
type CacheConfig[T v1.Object] struct {
	// Handler is told of every change. Zero: nobody is.
	Handler Handler[T]
	// Indexes to maintain, by name. Nil: none.
	Indexes map[string]IndexFunc[T]
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// NewCache returns a cache of kind read from src.
func NewCache[T v1.Object](src Source, kind string, cfg CacheConfig[T]) *Cache[T] {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cache[T]{src: src, kind: kind, log: cfg.Logger, handler: cfg.Handler, synced: make(chan struct{}),
		items: map[string]T{}, indexes: map[string]*index[T]{}}
	for name, fn := range cfg.Indexes {
		c.indexes[name] = &index[T]{fn: fn, byName: map[string][]string{}, counts: map[string]map[string]int{}, totals: map[string]int{}}
	}
	return c
}

// Run keeps the cache current until ctx ends. A Cache runs once: a second Run returns at once,
// as its state would otherwise be fed twice.
func (c *Cache[T]) Run(ctx context.Context) {
	c.mu.Lock()
	ran := c.running
	c.running = true
	c.mu.Unlock()
	if ran {
		c.log.Error("cache: Run called twice; ignored", "kind", c.kind)
		return
	}
	ListWatchInto(ctx, c.src, c.kind, c.log, (*cacheFeed[T])(c))
}

// Synced is closed once the cache holds a first full list and its handler has been told of it.
func (c *Cache[T]) Synced() <-chan struct{} { return c.synced }

// WaitForSync waits until every cache has synced, and reports false if ctx ended first.
func WaitForSync(ctx context.Context, caches ...interface{ Synced() <-chan struct{} }) bool {
	for _, c := range caches {
		select {
		case <-c.Synced():
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Get returns the object named name. Read-only: see Cache.
func (c *Cache[T]) Get(name string) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.items[name]
	return o, ok
}

// List returns every object, sorted by name (the store's order). Read-only: see Cache.
func (c *Cache[T]) List() []T {
	c.mu.RLock()
	out := make([]T, 0, len(c.items))
	for _, o := range c.items {
		out = append(out, o)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GetMetadata().Name < out[j].GetMetadata().Name })
	return out
}

// Names returns the names of every object, unsorted.
func (c *Cache[T]) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.items))
	for name := range c.items {
		out = append(out, name)
	}
	return out
}

// Len returns how many objects the cache holds.
func (c *Cache[T]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

// Revision returns the store revision the cache reflects.
func (c *Cache[T]) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// Counts returns, for index name (nil when there is no such index), the count of each value over every object except the one
// named except ("" for none), as a new map the caller owns. It costs O(values), not O(objects).
func (c *Cache[T]) Counts(name, except string) map[string]int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ix := c.indexes[name]
	if ix == nil {
		return nil
	}
	out := make(map[string]int, len(ix.totals))
	for v, n := range ix.totals {
		if m := n - ix.counts[v][except]; m > 0 {
			out[v] = m
		}
	}
	return out
}

// Indexed returns the names of the objects that index name (none when there is no such index)
// holds under value, sorted.
func (c *Cache[T]) Indexed(name, value string) []string {
	c.mu.RLock()
	ix := c.indexes[name]
	var out []string
	if ix != nil {
		for n := range ix.counts[value] {
			out = append(out, n)
		}
	}
	c.mu.RUnlock()
	sort.Strings(out)
	return out
}

// cacheFeed is the Feed side of a Cache, kept off its public methods.
type cacheFeed[T v1.Object] Cache[T]

// Replace implements Feed: the cache becomes objs; what is missing was deleted meanwhile.
func (f *cacheFeed[T]) Replace(objs []v1.Object, rev int64) {
	c := (*Cache[T])(f)
	type change struct {
		old, obj T
		had, has bool
	}
	var changes []change
	c.mu.Lock()
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		obj, ok := o.(T)
		if !ok {
			continue
		}
		name := obj.GetMetadata().Name
		seen[name] = true
		old, had := c.items[name]
		c.putLocked(name, obj)
		changes = append(changes, change{old: old, obj: obj, had: had, has: true})
	}
	for name, old := range c.items {
		if !seen[name] {
			c.deleteLocked(name)
			changes = append(changes, change{old: old, had: true})
		}
	}
	c.rev = rev
	c.mu.Unlock()
	h := c.handler
	for _, ch := range changes {
		switch {
		case ch.has && !ch.had && h.OnAdd != nil:
			h.OnAdd(ch.obj)
		case ch.has && ch.had && h.OnUpdate != nil:
			h.OnUpdate(ch.old, ch.obj)
		case !ch.has && h.OnDelete != nil:
			h.OnDelete(ch.old)
		}
	}
	// Synced only once the handler has been told of the first list: a controller that waits
	// for it then has every key queued before its first reconcile.
	select {
	case <-c.synced:
	default:
		close(c.synced)
	}
}

// Apply implements Feed.
func (f *cacheFeed[T]) Apply(ev store.Event) {
	c := (*Cache[T])(f)
	obj, ok := ev.Object.(T)
	if !ok {
		c.log.Warn("cache: unexpected object in watch", "kind", c.kind, "type", fmt.Sprintf("%T", ev.Object))
		return
	}
	name := obj.GetMetadata().Name
	c.mu.Lock()
	old, had := c.items[name]
	if ev.Type == store.Deleted {
		c.deleteLocked(name)
	} else {
		c.putLocked(name, obj)
	}
	if ev.Revision > c.rev {
		c.rev = ev.Revision
	}
	c.mu.Unlock()
	h := c.handler
	switch {
	case ev.Type == store.Deleted:
		if had && h.OnDelete != nil {
			h.OnDelete(old)
		}
	case had && h.OnUpdate != nil:
		h.OnUpdate(old, obj)
	case !had && h.OnAdd != nil:
		h.OnAdd(obj)
	}
}

func (c *Cache[T]) putLocked(name string, obj T) {
	c.unindexLocked(name)
	c.items[name] = obj
	for _, ix := range c.indexes {
		vals := ix.fn(obj)
		if len(vals) == 0 {
			continue
		}
		ix.byName[name] = vals
		for _, v := range vals {
			m := ix.counts[v]
			if m == nil {
				m = map[string]int{}
				ix.counts[v] = m
			}
			m[name]++
			ix.totals[v]++
		}
	}
}

func (c *Cache[T]) deleteLocked(name string) {
	c.unindexLocked(name)
	delete(c.items, name)
}

func (c *Cache[T]) unindexLocked(name string) {
	for _, ix := range c.indexes {
		for _, v := range ix.byName[name] {
			if m := ix.counts[v]; m != nil {
				if m[name]--; m[name] <= 0 {
					delete(m, name)
				}
				if len(m) == 0 {
					delete(ix.counts, v)
				}
			}
			if ix.totals[v]--; ix.totals[v] <= 0 {
				delete(ix.totals, v)
			}
		}
		delete(ix.byName, name)
	}
}
