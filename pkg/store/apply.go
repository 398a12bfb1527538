package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
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

// Apply applies m at revision rev (the next revision) to t. Errors such as ErrConflict are
// outcomes, the same on every replica; errors from t are failures.
func Apply(t Table, rev int64, m Mutation) (Result, error) {
	cur, err := t.Get(m.Kind, m.Name)
	if err != nil {
		return Result{}, fmt.Errorf("store: read %s/%s: %w", m.Kind, m.Name, err)
	}
	var curObj v1.Object
	if cur != nil {
		if curObj, err = decodeStored(m.Kind, cur); err != nil {
			return Result{}, err
		}
	}
	key := v1.Key{Kind: m.Kind, Name: m.Name}
	if m.ResourceVersion != "" && curObj != nil && curObj.GetMetadata().ResourceVersion != m.ResourceVersion {
		return Result{}, fmt.Errorf("%s: %w: have %s, got %s", key, ErrConflict, curObj.GetMetadata().ResourceVersion, m.ResourceVersion)
	}
	rv := strconv.FormatInt(rev, 10)

	switch m.Op {
	case OpCreate:
		if curObj != nil {
			return Result{}, fmt.Errorf("%s: %w", key, ErrAlreadyExists)
		}
		if m.ResourceVersion != "" {
			return Result{}, fmt.Errorf("%s: %w: resourceVersion %s given for an object that does not exist", key, ErrConflict, m.ResourceVersion)
		}
		obj, err := decodeStored(m.Kind, m.Object)
		if err != nil {
			return Result{}, err
		}
		md := obj.GetMetadata()
		now := m.Now
		md.UID, md.Generation, md.ResourceVersion = m.UID, 1, rv
		md.CreationTimestamp, md.DeletionTimestamp = &now, nil
		return put(t, rev, Added, obj)

	case OpUpdate, OpUpdateStatus:
		if curObj == nil {
			return Result{}, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		in, err := decodeStored(m.Kind, m.Object)
		if err != nil {
			return Result{}, err
		}
		// A second decode of the stored bytes is the cheapest deep copy.
		next, err := decodeStored(m.Kind, cur)
		if err != nil {
			return Result{}, err
		}
		if m.Op == OpUpdate {
			nm, im := next.GetMetadata(), in.GetMetadata()
			nm.Labels, nm.Annotations, nm.Finalizers, nm.OwnerReferences = im.Labels, im.Annotations, im.Finalizers, im.OwnerReferences
			specChanged := !jsonEqual(v1.SpecOf(curObj), v1.SpecOf(in))
			setField(next, in, "Spec")
			if specChanged {
				nm.Generation++
			}
		} else {
			setField(next, in, "Status")
		}
		// The stored bytes were written by put with the same encoder: equal bytes, no change.
		if b, err := json.Marshal(next); err == nil && bytes.Equal(b, cur) {
			return Result{Object: cur}, nil // nothing changed: no revision consumed
		}
		next.GetMetadata().ResourceVersion = rv
		if next.GetMetadata().DeletionTimestamp != nil && len(next.GetMetadata().Finalizers) == 0 {
			return remove(t, rev, next)
		}
		return put(t, rev, Modified, next)

	case OpDelete:
		if curObj == nil {
			return Result{}, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		md := curObj.GetMetadata()
		if len(md.Finalizers) > 0 {
			if md.DeletionTimestamp != nil {
				return Result{Object: cur}, nil
			}
			now := m.Now
			md.DeletionTimestamp = &now
			md.ResourceVersion = rv
			return put(t, rev, Modified, curObj)
		}
		md.ResourceVersion = rv
		return remove(t, rev, curObj)
	}
	return Result{}, fmt.Errorf("store: unknown op %q", m.Op)
}

func put(t Table, rev int64, typ EventType, obj v1.Object) (Result, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return Result{}, fmt.Errorf("store: encode %s: %w", v1.KeyOf(obj), err)
	}
	k := v1.KeyOf(obj)
	if err := t.Put(k.Kind, k.Name, b); err != nil {
		return Result{}, fmt.Errorf("store: write %s: %w", k, err)
	}
	return Result{Object: b, Event: &RawEvent{Type: typ, Kind: k.Kind, Name: k.Name, Revision: rev, Object: b}}, nil
}

func remove(t Table, rev int64, obj v1.Object) (Result, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return Result{}, fmt.Errorf("store: encode %s: %w", v1.KeyOf(obj), err)
	}
	k := v1.KeyOf(obj)
	if err := t.Delete(k.Kind, k.Name); err != nil {
		return Result{}, fmt.Errorf("store: delete %s: %w", k, err)
	}
	return Result{Object: b, Event: &RawEvent{Type: Deleted, Kind: k.Kind, Name: k.Name, Revision: rev, Object: b}}, nil
}

// decodeStored decodes JSON the store wrote itself, of a known kind: no strictness needed, and
// no second pass to find the kind (this is the hot path of every write and read).
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

// DecodeObject decodes an object the store holds, for implementations.
func DecodeObject(b []byte) (v1.Object, error) {
	obj, err := v1.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("store: decode stored object: %w", err)
	}
	return obj, nil
}

// DecodeKind decodes an object of a known kind the store holds: faster than DecodeObject.
func DecodeKind(kind string, b []byte) (v1.Object, error) { return decodeStored(kind, b) }

func jsonEqual(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}

// setField moves the named top-level field (Spec or Status) of src into dst, of the same kind.
// src is a fresh decode owned by Apply, so sharing its memory is safe.
func setField(dst, src v1.Object, name string) {
	reflect.ValueOf(dst).Elem().FieldByName(name).Set(reflect.ValueOf(src).Elem().FieldByName(name))
}
