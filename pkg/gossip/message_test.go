package gossip

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func TestWireRoundTrip(t *testing.T) {
	r := replica("b", "web", 3, v1.ReplicaRunning)
	r.ExitCode, r.Restarts, r.Reason, r.Message = 1, 2, v1.ReasonCrashLoop, "boom"
	b, err := encodeUpdate(wireUpdate{Node: "b", Epoch: 7, Entry: toWire(r, 9)})
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != wireVersion || b[1] != kindUpdate {
		t.Fatalf("header % x", b[:2])
	}
	u, err := decodeUpdate(b, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if got := fromWire(u.Node, u.Entry); !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	if len(b) > 400 {
		t.Fatalf("a typical replica update takes %d bytes", len(b))
	}
}

func TestDecodeRejects(t *testing.T) {
	ok, _ := encodeUpdate(wireUpdate{Node: "b", Epoch: 1, Entry: entry("web", 0, 1, "running")})
	body := func(s string) []byte { return append([]byte{wireVersion, kindUpdate}, s...) }
	cases := map[string]struct {
		buf    []byte
		reason string
	}{
		"empty":          {nil, "malformed"},
		"header only":    {[]byte{wireVersion}, "malformed"},
		"version":        {append([]byte{2}, ok[1:]...), "version"},
		"kind":           {append([]byte{wireVersion, kindState}, ok[2:]...), "kind"},
		"oversized":      {append(ok, bytes.Repeat([]byte(" "), 2000)...), "oversized"},
		"not json":       {body("hello"), "malformed"},
		"trailing":       {append(ok, []byte("{}")...), "malformed"},
		"no node":        {body(`{"e":1,"r":{"q":1,"s":"web","i":0}}`), "invalid"},
		"no service":     {body(`{"n":"b","e":1,"r":{"q":1,"i":0}}`), "invalid"},
		"negative index": {body(`{"n":"b","e":1,"r":{"q":1,"s":"web","i":-1}}`), "invalid"},
		"seq zero":       {body(`{"n":"b","e":1,"r":{"q":0,"s":"web","i":0}}`), "invalid"},
		"long field":     {body(`{"n":"b","e":1,"r":{"q":1,"s":"web","i":0,"h":"` + strings.Repeat("h", 200) + `"}}`), "invalid"},
		"wrong type":     {body(`{"n":5}`), "malformed"},
		"index overflow": {body(`{"n":"b","e":1,"r":{"q":1,"s":"web","i":99999999999}}`), "malformed"},
	}
	for name, c := range cases {
		_, err := decodeUpdate(c.buf, 1024)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if got := dropReason(err); got != c.reason {
			t.Errorf("%s: reason %q (%v), want %q", name, got, err, c.reason)
		}
	}
	st := func(s string) []byte { return append([]byte{wireVersion, kindState}, s...) }
	for name, buf := range map[string][]byte{
		"duplicate node":     st(`{"f":"x","ns":[{"n":"b","e":1,"q":1},{"n":"b","e":1,"q":1}]}`),
		"entry above seq":    st(`{"f":"x","ns":[{"n":"b","e":1,"q":1,"r":[{"q":2,"s":"web","i":0}]}]}`),
		"unnamed node":       st(`{"f":"x","ns":[{"e":1,"q":1}]}`),
		"bad entry in state": st(`{"f":"x","ns":[{"n":"b","e":1,"q":1,"r":[{"q":1,"s":"","i":0}]}]}`),
	} {
		if _, err := decodeState(buf, 1<<20); err == nil {
			t.Errorf("state %s: accepted", name)
		}
	}
	if _, err := decodeMeta(append([]byte{wireVersion, kindMeta}, `{"n":""}`...), 512); err == nil {
		t.Error("meta without a name accepted")
	}
}

// fuzzSeeds are valid messages of each kind plus near misses.
func fuzzSeeds(f *testing.F) {
	u, _ := encodeUpdate(wireUpdate{Node: "b", Epoch: 1, Entry: toWire(replica("b", "web", 0, v1.ReplicaRunning), 1)})
	tomb, _ := encodeUpdate(wireUpdate{Node: "b", Epoch: 1, Entry: wireReplica{Seq: 2, Deleted: true, Service: "web"}})
	s, _ := encodeState(wireState{From: "b", Nodes: []wireNodeState{
		{Node: "b", Epoch: 1, Seq: 2, Entries: []wireReplica{toWire(replica("b", "web", 0, v1.ReplicaRunning), 2)}},
		{Node: "a", Epoch: 2, Seq: 1, Entries: []wireReplica{{Seq: 1, Deleted: true, Service: "db"}}},
	}})
	m, _ := encodeMeta(nodeMeta{Name: "b", Labels: map[string]string{"k": "v"}, API: "127.0.0.1:1"})
	for _, b := range [][]byte{u, tomb, s, m, nil, {1}, {1, 1}, {1, 2, '{', '}'}, {1, 3, '['}, u[:len(u)/2]} {
		f.Add(b)
	}
}

func FuzzDecodeUpdate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, buf []byte) {
		g := newBare(t, "a", nil)
		u, err := decodeUpdate(buf, g.cfg.MaxMessageSize)
		if err != nil {
			if dropReason(err) == "other" {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		b, err := encodeUpdate(u)
		if err != nil {
			t.Fatal(err)
		}
		u2, err := decodeUpdate(b, 1<<20)
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("re-decode: %v\n%+v\n%+v", err, u, u2)
		}
		g.set.SetNode(observed.Node{Name: u.Node, Alive: true})
		(*delegate)(g).NotifyMsg(buf)
		_ = g.set.Replicas()
	})
}

func FuzzMergeRemoteState(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, buf []byte) {
		g := newBare(t, "a", nil)
		g.SetLocalReplicas([]observed.Replica{replica("a", "web", 0, v1.ReplicaRunning)})
		(*delegate)(g).MergeRemoteState(buf, false)
		(*delegate)(g).MergeRemoteState(buf, true)
		// Our own replicas are never overwritten by a peer.
		if got := summary(g.set.NodeReplicas("a")); got != "a/web/0/running" {
			t.Fatalf("own replicas now %q", got)
		}
		if _, err := decodeState(g.localState(), g.cfg.MaxStateSize); err != nil {
			t.Fatalf("our own state does not decode after merging: %v", err)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, buf []byte) {
		m, err := decodeMeta(buf, 512)
		if err != nil {
			return
		}
		if m.Name == "" {
			t.Fatal("meta without a name accepted")
		}
	})
}
