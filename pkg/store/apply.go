package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Op is a kind of write.
type Op string

// Write operations.
const (
	OpCreate       Op = "create"
	OpUpdate       Op = "update"
	OpUpdateStatus Op = "updateStatus"
	OpDelete       Op = "delete"
)

// Mutation is one write, fully decided before it is applied: the proposer picks the time and the
// uid, so every replica that applies the same Mutation at the same revision reaches the same
// state. It is what the replicated store puts in its log.
type Mutation struct {
	Op   Op     `json:"op"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Object is the JSON of the object written (create, update, updateStatus).
	Object json.RawMessage `json:"object,omitempty"`
	// ResourceVersion is the precondition, if any.
	ResourceVersion string    `json:"resourceVersion,omitempty"`
	Now             time.Time `json:"now"`
	UID             string    `json:"uid,omitempty"`
}

// Table is the object table a state machine writes into: a map in memory, a bbolt bucket on
// disk. Values are objects' JSON.
type Table interface {
	Get(kind, name string) ([]byte, error) // nil, nil when absent
	Put(kind, name string, value []byte) error
	Delete(kind, name string) error
}

// RawEvent is an event before decoding: what the history keeps.
type RawEvent struct {
	Type     EventType
	Kind     string
	Name     string
	Revision int64
	Object   []byte
}

// Result is the outcome of applying a Mutation. Event is nil when nothing changed (a no-op
// write); then the revision is not consumed.
type Result struct {
	Object []byte
	Event  *RawEvent
}

// NewMutation prepares a write of obj: defaults are applied by the caller, validation here, so an
// invalid object never reaches a log.
func NewMutation(op Op, obj v1.Object, now time.Time, uid string) (Mutation, error) {
	m := Mutation{Op: op, Kind: obj.GetTypeMeta().Kind, Name: obj.GetMetadata().Name, Now: now.UTC(), UID: uid}
	if _, ok := v1.LookupKind(m.Kind); !ok {
		return m, fmt.Errorf("store: %w %q", v1.ErrUnknownKind, m.Kind)
	}
	if errs := obj.Validate(); len(errs) > 0 {
		info, _ := v1.LookupKind(m.Kind)
		return m, errs.ToAggregate(info.Plural, m.Name)
	}
	m.ResourceVersion = obj.GetMetadata().ResourceVersion
	b, err := json.Marshal(obj)
	if err != nil {
		return m, fmt.Errorf("store: encode %s/%s: %w", m.Kind, m.Name, err)
	}
	m.Object = b
	return m, nil
}

// stored is an object as Apply handles it: the store owns metadata, so it is typed; spec and
// status are carried as the proposer encoded them. A replica therefore never drops a field it
// does not know inside spec or status (a newer proposer's), and every replica that applies the
// same Mutation stores the same bytes and makes the same no-op decision whatever its version
// (a typed re-encode would strip such fields on older replicas only, so an update that touched
// nothing else would consume a revision on some replicas and not on others). Encoded, it is
// byte-for-byte what json.Marshal of the typed object gives: the field order of TypeMeta,
// Metadata, Spec, Status. Unknown top-level and metadata fields are dropped (docs/store.md).
type stored struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   v1.ObjectMeta   `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	Status     json.RawMessage `json:"status"`
}

func decodeRaw(kind string, b []byte) (*stored, error) {
	var o stored
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("store: decode stored %s: %w", kind, err)
	}
	if o.Kind != kind {
		return nil, fmt.Errorf("store: decode stored %s: object says kind %q", kind, o.Kind)
	}
	// An absent or null part is the zero value, as a typed decode would make it.
	if len(o.Spec) == 0 || bytes.Equal(o.Spec, []byte("null")) {
		o.Spec = json.RawMessage("{}")
	}
	if len(o.Status) == 0 || bytes.Equal(o.Status, []byte("null")) {
		o.Status = json.RawMessage("{}")
	}
	return &o, nil
}

func (o *stored) key() v1.Key { return v1.Key{Kind: o.Kind, Name: o.Metadata.Name} }

// Apply applies m at revision rev (the next revision) to t. Errors such as ErrConflict are
// outcomes, the same on every replica; errors from t are failures.
func Apply(t Table, rev int64, m Mutation) (Result, error) { return (*Applier)(nil).Apply(t, rev, m) }

// Applier applies Mutations as Apply does, and remembers the decoded form of the objects it
// wrote: the next write of the same object decodes the stored bytes only if they are not the
// ones it wrote (checked byte for byte, so the outcome is Apply's whatever else wrote the
// table). A nil *Applier caches nothing. Not safe for concurrent use.
type Applier struct {
	size  int
	cache map[v1.Key]cachedObject
}

type cachedObject struct {
	raw []byte
	obj *stored
}

// NewApplier returns an Applier that remembers up to size objects.
func NewApplier(size int) *Applier {
	return &Applier{size: size, cache: make(map[v1.Key]cachedObject, size)}
}

// decodeCurrent decodes the stored bytes of key, from the cache when they are the ones cached.
// The result is the caller's to modify (a copy of the cached struct; its maps and slices are
// never modified in place by Apply, only replaced).
func (a *Applier) decodeCurrent(key v1.Key, cur []byte) (*stored, error) {
	if a != nil {
		if c, ok := a.cache[key]; ok && bytes.Equal(c.raw, cur) {
			o := *c.obj
			return &o, nil
		}
	}
	return decodeRaw(key.Kind, cur)
}

// remember records what Apply wrote (obj encoded as raw), or forgets key (obj nil).
func (a *Applier) remember(key v1.Key, raw []byte, obj *stored) {
	if a == nil {
		return
	}
	if obj == nil {
		delete(a.cache, key)
		return
	}
	if _, ok := a.cache[key]; !ok && len(a.cache) >= a.size {
		for k := range a.cache { // any one: map order is random
			delete(a.cache, k)
			break
		}
	}
	o := *obj
	a.cache[key] = cachedObject{raw: raw, obj: &o}
}

// Apply is the package's Apply, with a's cache.
func (a *Applier) Apply(t Table, rev int64, m Mutation) (Result, error) {
	res, obj, err := a.apply(t, rev, m)
	if err == nil && res.Event != nil {
		k := v1.Key{Kind: m.Kind, Name: m.Name}
		if res.Event.Type == Deleted {
			a.remember(k, nil, nil)
		} else {
			a.remember(k, res.Object, obj)
		}
	}
	return res, err
}

func (a *Applier) apply(t Table, rev int64, m Mutation) (Result, *stored, error) {
	if info, ok := v1.LookupKind(m.Kind); !ok || info.Kind != m.Kind {
		return Result{}, nil, fmt.Errorf("store: %w %q", v1.ErrUnknownKind, m.Kind)
	}
	cur, err := t.Get(m.Kind, m.Name)
	if err != nil {
		return Result{}, nil, fmt.Errorf("store: read %s/%s: %w", m.Kind, m.Name, err)
	}
	var curObj *stored
	if cur != nil {
		if curObj, err = a.decodeCurrent(v1.Key{Kind: m.Kind, Name: m.Name}, cur); err != nil {
			return Result{}, nil, err
		}
	}
	key := v1.Key{Kind: m.Kind, Name: m.Name}
	if m.ResourceVersion != "" && curObj != nil && curObj.Metadata.ResourceVersion != m.ResourceVersion {
		return Result{}, nil, fmt.Errorf("%s: %w: have %s, got %s", key, ErrConflict, curObj.Metadata.ResourceVersion, m.ResourceVersion)
	}
	rv := strconv.FormatInt(rev, 10)

	switch m.Op {
	case OpCreate:
		if curObj != nil {
			return Result{}, nil, fmt.Errorf("%s: %w", key, ErrAlreadyExists)
		}
		if m.ResourceVersion != "" {
			return Result{}, nil, fmt.Errorf("%s: %w: resourceVersion %s given for an object that does not exist", key, ErrConflict, m.ResourceVersion)
		}
		obj, err := decodeRaw(m.Kind, m.Object)
		if err != nil {
			return Result{}, nil, err
		}
		md := &obj.Metadata
		now := m.Now
		md.UID, md.Generation, md.ResourceVersion = m.UID, 1, rv
		md.CreationTimestamp, md.DeletionTimestamp = &now, nil
		return withObj(put(t, rev, Added, obj))(obj)

	case OpUpdate, OpUpdateStatus:
		if curObj == nil {
			return Result{}, nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		in, err := decodeRaw(m.Kind, m.Object)
		if err != nil {
			return Result{}, nil, err
		}
		next := *curObj  // curObj is Apply's own decode: sharing its memory is safe
		var changed bool // the part written differs from the stored one: not a no-op
		if m.Op == OpUpdate {
			nm, im := &next.Metadata, in.Metadata
			nm.Labels, nm.Annotations, nm.Finalizers, nm.OwnerReferences = im.Labels, im.Annotations, im.Finalizers, im.OwnerReferences
			if !rawEqual(curObj.Spec, in.Spec) {
				nm.Generation++
			}
			next.Spec = in.Spec
			changed = partChanged(curObj.Spec, in.Spec)
		} else {
			next.Status = in.Status
			changed = partChanged(curObj.Status, in.Status)
		}
		// The stored bytes were written by put with the same encoder: equal bytes, no change.
		// (When the spec or status written encodes differently from the stored one, the whole
		// object does: the second encoding is skipped.)
		if !changed {
			if b, err := json.Marshal(&next); err == nil && bytes.Equal(b, cur) {
				return Result{Object: cur}, nil, nil // nothing changed: no revision consumed
			}
		}
		next.Metadata.ResourceVersion = rv
		if next.Metadata.DeletionTimestamp != nil && len(next.Metadata.Finalizers) == 0 {
			return withObj(remove(t, rev, &next))(&next)
		}
		return withObj(put(t, rev, Modified, &next))(&next)

	case OpDelete:
		if curObj == nil {
			return Result{}, nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		md := &curObj.Metadata
		if len(md.Finalizers) > 0 {
			if md.DeletionTimestamp != nil {
				return Result{Object: cur}, nil, nil
			}
			now := m.Now
			md.DeletionTimestamp = &now
			md.ResourceVersion = rv
			return withObj(put(t, rev, Modified, curObj))(curObj)
		}
		md.ResourceVersion = rv
		return withObj(remove(t, rev, curObj))(curObj)
	}
	return Result{}, nil, fmt.Errorf("store: unknown op %q", m.Op)
}

// withObj adds the object written to put's or remove's results.
func withObj(res Result, err error) func(*stored) (Result, *stored, error) {
	return func(o *stored) (Result, *stored, error) { return res, o, err }
}

func put(t Table, rev int64, typ EventType, obj *stored) (Result, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return Result{}, fmt.Errorf("store: encode %s: %w", obj.key(), err)
	}
	k := obj.key()
	if err := t.Put(k.Kind, k.Name, b); err != nil {
		return Result{}, fmt.Errorf("store: write %s: %w", k, err)
	}
	return Result{Object: b, Event: &RawEvent{Type: typ, Kind: k.Kind, Name: k.Name, Revision: rev, Object: b}}, nil
}

func remove(t Table, rev int64, obj *stored) (Result, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return Result{}, fmt.Errorf("store: encode %s: %w", obj.key(), err)
	}
	k := obj.key()
	if err := t.Delete(k.Kind, k.Name); err != nil {
		return Result{}, fmt.Errorf("store: delete %s: %w", k, err)
	}
	return Result{Object: b, Event: &RawEvent{Type: Deleted, Kind: k.Kind, Name: k.Name, Revision: rev, Object: b}}, nil
}

// partChanged reports whether the spec or status in, as json.Marshal of the object would
// encode it (compacted, HTML-escaped), differs from stored, the bytes of that part in the
// stored object. Equal encodings of the whole object have equal parts, so a changed part
// means the object changed; an unchanged part decides nothing.
func partChanged(stored, in json.RawMessage) bool {
	if bytes.Equal(stored, in) {
		return false
	}
	enc, err := json.Marshal(in)
	return err == nil && !bytes.Equal(enc, stored)
}

// rawEqual compares two JSON values as the encoder would write them.
func rawEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// decodeStored decodes JSON the store wrote itself, of a known kind: leniently (a newer version
// may have written fields this one does not know), and with no second pass to find the kind
// (this is the hot path of every read).
func decodeStored(kind string, b []byte) (v1.Object, error) {
	info, ok := v1.LookupKind(kind)
	if !ok || info.Kind != kind {
		return nil, fmt.Errorf("store: decode stored object: %w %q", v1.ErrUnknownKind, kind)
	}
	obj := info.New()
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, fmt.Errorf("store: decode stored %s: %w", kind, err)
	}
	return obj, nil
}

// DecodeObject decodes an object the store holds, for implementations. It is lenient: fields
// this version does not know (written by a newer version, through the log or a snapshot) are
// ignored rather than failing every read of the kind.
func DecodeObject(b []byte) (v1.Object, error) {
	obj, err := v1.DecodeLenient(b)
	if err != nil {
		return nil, fmt.Errorf("store: decode stored object: %w", err)
	}
	return obj, nil
}

// DecodeKind decodes an object of a known kind the store holds: faster than DecodeObject.
func DecodeKind(kind string, b []byte) (v1.Object, error) { return decodeStored(kind, b) }
