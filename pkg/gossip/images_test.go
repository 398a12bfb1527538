package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/gossip/gossiptest"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Image sets spread through the push/pull exchanges to every node, also to one that never
// talks to the advertiser directly, and a newer set replaces the older one.
func TestImageAdvertisementSpreads(t *testing.T) {
	nw := gossiptest.NewNetwork()
	fast := func(c *Config) { c.PushPullInterval = 100 * time.Millisecond }
	nodes := []*tnode{startMem(t, nw, "n1", fast), startMem(t, nw, "n2", fast), startMem(t, nw, "n3", fast)}
	joinAll(t, nodes)
	if got := nodes[0].g.SetLocalImages([]string{"sha256:aaaa", "constellation-test/echo:1", "nginx"}); got != 3 {
		t.Fatalf("SetLocalImages advertised %d keys, want 3", got)
	}
	holders := func(n *tnode, ref string) []string { return n.set.NodesWithImage(ref) }
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.name+" sees n1's images", func() error {
			for _, ref := range []string{"docker.io/constellation-test/echo:1", "nginx:latest", "sha256:AAAA"} {
				if got := holders(n, ref); !slices.Equal(got, []string{"n1"}) {
					return fmt.Errorf("holders of %s = %v", ref, got)
				}
			}
			return nil
		})
		if got := holders(n, "constellation-test/echo:2"); len(got) != 0 {
			t.Fatalf("%s: holders of an image nobody has = %v", n.name, got)
		}
	}
	nodes[2].g.SetLocalImages([]string{"nginx"})
	nodes[0].g.SetLocalImages([]string{"redis:7"})
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.name+" sees the new sets", func() error {
			if got := holders(n, "nginx"); !slices.Equal(got, []string{"n3"}) {
				return fmt.Errorf("holders of nginx = %v", got)
			}
			if got := holders(n, "redis:7"); !slices.Equal(got, []string{"n1"}) {
				return fmt.Errorf("holders of redis:7 = %v", got)
			}
			return nil
		})
	}
}

// At most MaxImageKeys keys are advertised, the first ones given; duplicates count once.
func TestSetLocalImagesBounded(t *testing.T) {
	n := startMem(t, gossiptest.NewNetwork(), "n1", nil)
	refs := []string{"a:1", "docker.io/library/a:1"} // the same key twice
	for i := range 2 * observed.MaxImageKeys {
		refs = append(refs, fmt.Sprintf("img%d:1", i))
	}
	if got := n.g.SetLocalImages(refs); got != observed.MaxImageKeys {
		t.Fatalf("advertised %d keys, want %d", got, observed.MaxImageKeys)
	}
	if got := n.set.NodesWithImage("a:1"); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("the first ref is not advertised: %v", got)
	}
	if got := n.set.NodesWithImage(fmt.Sprintf("img%d:1", observed.MaxImageKeys)); len(got) != 0 {
		t.Fatalf("a ref beyond the bound is advertised: %v", got)
	}
	n.g.mu.Lock()
	ws, _ := n.g.imagesForStateLocked()
	n.g.mu.Unlock()
	b, err := encodeState(wireState{From: "n1", Images: ws})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeState(b, DefaultConfig().MaxStateSize); err != nil {
		t.Fatalf("our own bounded set does not decode: %v", err)
	}
}

// Mixed versions: a state with image sets decodes in an agent that knows nothing of them
// (the old wireState shape), and a state with fields we do not know decodes here.
func TestImageSetsWireCompat(t *testing.T) {
	ws := wireState{From: "n1", Nodes: []wireNodeState{{Node: "n1", Epoch: 1}},
		Images: []wireImages{{Node: "n1", Version: 5, Keys: packKeys([]uint64{1, 2})}}}
	b, err := encodeState(ws)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != wireVersion || b[1] != kindState {
		t.Fatalf("header = %v, want the unchanged version and kind", b[:2])
	}
	var old struct {
		From  string          `json:"f"`
		Nodes []wireNodeState `json:"ns,omitempty"`
	}
	if err := json.Unmarshal(b[headerLen:], &old); err != nil || old.From != "n1" || len(old.Nodes) != 1 {
		t.Fatalf("an older agent cannot read the state: %+v, %v", old, err)
	}
	got, err := decodeState(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Images) != 1 || !slices.Equal(unpackKeys(got.Images[0].Keys), []uint64{1, 2}) {
		t.Fatalf("image sets after a round trip = %+v", got.Images)
	}
	future := append([]byte{wireVersion, kindState}, []byte(`{"f":"n9","im":[{"n":"n9","v":1,"zz":true}],"zz":[1]}`)...)
	if _, err := decodeState(future, 1<<20); err != nil {
		t.Fatalf("unknown fields are refused: %v", err)
	}
}

func TestImageSetsBadContent(t *testing.T) {
	for name, ims := range map[string][]wireImages{
		"keys not a multiple of 8": {{Node: "n1", Version: 1, Keys: make([]byte, 7)}},
		"too many keys":            {{Node: "n1", Version: 1, Keys: make([]byte, 8*(observed.MaxImageKeys+1))}},
		"no node name":             {{Version: 1}},
		"a node twice":             {{Node: "n1", Version: 1}, {Node: "n1", Version: 2}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := encodeState(wireState{From: "n1", Images: ims})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeState(b, 1<<20); !errors.Is(err, errBadContent) {
				t.Fatalf("decode = %v, want errBadContent", err)
			}
		})
	}
}

// An older set of a node never replaces a newer one, and our own set is never taken from
// another node.
func TestMergeImagesKeepsNewest(t *testing.T) {
	n := startMem(t, gossiptest.NewNetwork(), "n1", nil)
	n.set.SetNode(observed.Node{Name: "n2", Alive: true})
	n.g.SetLocalImages([]string{"mine:1"})
	n.g.mergeImages([]wireImages{{Node: "n2", Version: 10, Keys: packKeys([]uint64{observed.ImageKey("new:1")})}})
	n.g.mergeImages([]wireImages{
		{Node: "n2", Version: 9, Keys: packKeys([]uint64{observed.ImageKey("old:1")})},
		{Node: "n1", Version: 1 << 62, Keys: nil},
	})
	if got := n.set.NodesWithImage("new:1"); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("holders of new:1 = %v", got)
	}
	if got := n.set.NodesWithImage("old:1"); len(got) != 0 {
		t.Fatalf("an older set replaced a newer one: %v", got)
	}
	if got := n.set.NodesWithImage("mine:1"); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("our own set was overwritten: %v", got)
	}
}

// A full state too large with every node's image set leaves the others' sets out first and
// keeps the replicas.
func TestLocalStateDropsOthersImageSetsFirst(t *testing.T) {
	n := startMem(t, gossiptest.NewNetwork(), "n1", func(c *Config) { c.MaxStateSize = 4096 })
	refs := func(prefix string) []string {
		var out []string
		for i := range observed.MaxImageKeys {
			out = append(out, fmt.Sprintf("%s%d:1", prefix, i))
		}
		return out
	}
	n.g.SetLocalImages(refs("own"))
	n.g.SetLocalReplicas([]observed.Replica{replica("n1", "web", 0, "running")})
	keys := make([]uint64, 0, observed.MaxImageKeys)
	for _, r := range refs("other") {
		keys = append(keys, observed.ImageKey(r))
	}
	n.g.mu.Lock()
	n.g.members["n2"] = &member{}
	n.g.mu.Unlock()
	n.g.mergeState(wireState{From: "n2", Nodes: []wireNodeState{{Node: "n2", Epoch: 1, Seq: 1,
		Entries: []wireReplica{{Seq: 1, Service: "web", Index: 1, State: "running"}}}},
		Images: []wireImages{{Node: "n2", Version: 1, Keys: packKeys(keys)}}}, false)
	b := n.g.localState()
	if b == nil {
		t.Fatal("no state sent")
	}
	ws, err := decodeState(b, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws.Images) != 1 || ws.Images[0].Node != "n1" || len(ws.Images[0].Keys) != 8*observed.MaxImageKeys {
		t.Fatalf("image sets sent = %d (first %+v), want n1's alone", len(ws.Images), ws.Images)
	}
	entries := map[string]int{}
	for _, ns := range ws.Nodes {
		entries[ns.Node] = len(ns.Entries)
	}
	if entries["n1"] != 1 || entries["n2"] != 1 {
		t.Fatalf("replicas per node in the state = %v, want n1 and n2's kept", entries)
	}
}
