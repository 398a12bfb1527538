package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Apply carries spec and status as proposed, but for an object this version knows it must
// store exactly what a typed re-encode gives (what earlier versions stored): otherwise a member
// of an earlier version and one of this version would disagree on which writes are no-ops.
func TestApplyStoresTypedEncoding(t *testing.T) {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = "web"
	s.Metadata.Labels = map[string]string{"b": "2", "a": "1"}
	s.Metadata.Annotations = map[string]string{"note": "<b>&amp;"}
	s.Metadata.Finalizers = []string{"x"}
	s.Spec.Image = "registry.local/web:1"
	s.Spec.Env = []v1.EnvVar{{Name: "A", Value: "x&y"}}
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}}
	s.Default()
	tbl := mapTable{}
	now := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	steps := []struct {
		op  Op
		mut func()
	}{
		{OpCreate, func() {}},
		{OpUpdate, func() { s.Spec.Image = "registry.local/web:2" }},
		{OpUpdateStatus, func() {
			s.Status.Replicas = 2
			s.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionTrue, LastTransitionTime: now}}
		}},
	}
	for i, st := range steps {
		st.mut()
		m, err := NewMutation(st.op, s, now, "uid-1")
		if err != nil {
			t.Fatal(err)
		}
		res, err := Apply(tbl, int64(i+1), m)
		if err != nil {
			t.Fatalf("%s: %v", st.op, err)
		}
		obj, err := DecodeKind(v1.KindService, res.Object)
		if err != nil {
			t.Fatal(err)
		}
		typed, _ := json.Marshal(obj)
		if !bytes.Equal(typed, res.Object) {
			t.Fatalf("%s: stored\n%s\nwant the typed encoding\n%s", st.op, res.Object, typed)
		}
		s = obj.(*v1.Service)
	}
}

// Two members apply the same log; the one that does not know a field keeps it anyway and
// stores the same bytes as the proposer.
func TestApplyKeepsUnknownSpecAndStatusFields(t *testing.T) {
	newer := `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"web"},` +
		`"spec":{"image":"registry.local/web:1","replicas":1,"futureSpec":{"mode":"fast"}},"status":{"futureStatus":[1,2]}}`
	tbl := mapTable{}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if _, err := Apply(tbl, 1, Mutation{Op: OpCreate, Kind: v1.KindService, Name: "web", Object: []byte(newer), Now: now, UID: "u"}); err != nil {
		t.Fatal(err)
	}
	// A status write by this version (which knows nothing of futureSpec) keeps the spec as is.
	cur, _ := DecodeKind(v1.KindService, tbl[v1.Key{Kind: v1.KindService, Name: "web"}])
	cur.(*v1.Service).Status.Replicas = 1
	m, err := NewMutation(OpUpdateStatus, cur, now, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(tbl, 2, m)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec   map[string]json.RawMessage `json:"spec"`
		Status map[string]json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(res.Object, &got); err != nil {
		t.Fatal(err)
	}
	if string(got.Spec["futureSpec"]) != `{"mode":"fast"}` {
		t.Fatalf("a status write dropped spec.futureSpec: %s", res.Object)
	}
	// The status came from this version's writer, which does not know futureStatus: the writer
	// decides the whole status (as a Kubernetes update does), the same on every member.
	if _, ok := got.Status["futureStatus"]; ok || string(got.Status["replicas"]) != "1" {
		t.Fatalf("status after this version's write: %s", res.Object)
	}
}

// The no-op decision skips the second encoding only when the spec or status written encodes
// differently from the stored one: a proposal whose spec is the same value in another form
// (spaces, as a foreign proposer may send) is still a
// no-op, and a changed one still takes a revision.
func TestApplyNoOpWithSpecInAnotherForm(t *testing.T) {
	tbl := mapTable{}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	obj := func(spec string) json.RawMessage {
		return json.RawMessage(`{"apiVersion":"` + v1.APIVersion + `","kind":"Secret","metadata":{"name":"s"},"spec":` + spec + `}`)
	}
	steps := []struct {
		op     Op
		spec   string
		noop   bool
		status bool
	}{
		{OpCreate, `{"data":{"v":"a<b"}}`, false, false},
		{OpUpdate, `{"data":{"v":"a\u003cb"}}`, true, false},
		{OpUpdate, `{ "data" : { "v" : "a\u003cb" } }`, true, false},
		{OpUpdate, `{"data":{"v":"a<c"}}`, false, false},
		{OpUpdateStatus, `{"data":{"v":"a<c"}}`, true, true},
	}
	rev := int64(0)
	for i, st := range steps {
		m := Mutation{Op: st.op, Kind: v1.KindSecret, Name: "s", Object: obj(st.spec), Now: now, UID: "u"}
		res, err := Apply(tbl, rev+1, m)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := res.Event == nil; got != st.noop {
			t.Fatalf("step %d (%s %s): no-op = %v, want %v", i, st.op, st.spec, got, st.noop)
		}
		if res.Event != nil {
			rev++
		}
	}
}

// An Applier decides exactly as Apply does: the same results and the same table over a mixed
// sequence of writes (creates, updates, no-ops, status, finalizers, deletes, conflicts), with
// evictions (size 2 for 4 names) and objects rewritten behind its back.
func TestApplierMatchesApply(t *testing.T) {
	plain, cached := mapTable{}, mapTable{}
	ap := NewApplier(2)
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	revPlain, revCached := int64(0), int64(0)
	for i := range 3000 {
		name := fmt.Sprintf("s%d", rnd.IntN(4))
		s := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
		s.Metadata.Name = name
		s.Spec.Data = map[string]string{"v": fmt.Sprint(rnd.IntN(3))}
		if rnd.IntN(4) == 0 {
			s.Metadata.Finalizers = []string{"f"}
		}
		if rnd.IntN(5) == 0 {
			s.Metadata.Labels = map[string]string{"l": fmt.Sprint(rnd.IntN(2))}
		}
		if rnd.IntN(6) == 0 {
			s.Metadata.ResourceVersion = fmt.Sprint(rnd.IntN(int(revPlain) + 1))
		}
		op := []Op{OpCreate, OpUpdate, OpUpdate, OpUpdateStatus, OpDelete}[rnd.IntN(5)]
		m, err := NewMutation(op, s, now.Add(time.Duration(i)*time.Second), fmt.Sprint("uid", i))
		if err != nil {
			t.Fatal(err)
		}
		if rnd.IntN(50) == 0 { // another writer changes the stored object (same bytes in both)
			if cur := plain[v1.Key{Kind: v1.KindSecret, Name: name}]; cur != nil {
				b := bytes.Replace(cur, []byte(`"generation":`), []byte(`"generation":1`), 1)
				plain[v1.Key{Kind: v1.KindSecret, Name: name}] = b
				cached[v1.Key{Kind: v1.KindSecret, Name: name}] = bytes.Clone(b)
			}
		}
		r1, err1 := Apply(plain, revPlain+1, m)
		r2, err2 := ap.Apply(cached, revCached+1, m)
		if fmt.Sprint(err1) != fmt.Sprint(err2) || !bytes.Equal(r1.Object, r2.Object) || (r1.Event == nil) != (r2.Event == nil) {
			t.Fatalf("step %d (%s %s): Apply = %s %v %v, Applier = %s %v %v", i, op, name, r1.Object, r1.Event != nil, err1, r2.Object, r2.Event != nil, err2)
		}
		if r1.Event != nil {
			revPlain++
			revCached++
		}
	}
	if len(plain) != len(cached) {
		t.Fatalf("tables differ: %d and %d objects", len(plain), len(cached))
	}
	for k, v := range plain {
		if !bytes.Equal(v, cached[k]) {
			t.Fatalf("%s differs:\n%s\n%s", k, v, cached[k])
		}
	}
}
