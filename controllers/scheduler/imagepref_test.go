package scheduler

import (
	"reflect"
	"testing"

	"github.com/constellation-sh/constellation/pkg/observed"
)

// The image holders break ties only: among nodes otherwise equal the holder is picked; the
// spread, the load, maxPerNode and the selectors decide as before.
func TestImageHoldersBreakTiesOnly(t *testing.T) {
	labelled := []NodeInfo{
		{Name: "a", Healthy: true, Labels: map[string]string{"disk": "ssd"}},
		{Name: "b", Healthy: true},
		{Name: "c", Healthy: true, Labels: map[string]string{"disk": "ssd"}},
	}
	holders := func(ns ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range ns {
			m[n] = true
		}
		return m
	}
	cases := []struct {
		name        string
		in          Input
		wantPerNode map[string]int
	}{
		{name: "equal candidates: the holder, not the first by name",
			in:          Input{Desired: 1, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a", "b", "c"), ImageHolders: holders("c")},
			wantPerNode: map[string]int{"c": 1}},
		{name: "equal candidates, no holder: by name as before",
			in:          Input{Desired: 1, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a", "b", "c")},
			wantPerNode: map[string]int{"a": 1}},
		{name: "two holders: the first of them by name",
			in:          Input{Desired: 2, SpecHash: "h1", MaxSurge: 2, Nodes: nodes("a", "b", "c", "d"), ImageHolders: holders("d", "b")},
			wantPerNode: map[string]int{"b": 1, "d": 1}},
		{name: "the spread wins over the holder",
			in:          Input{Desired: 3, SpecHash: "h1", MaxSurge: 3, Nodes: nodes("a", "b", "c"), ImageHolders: holders("c")},
			wantPerNode: map[string]int{"a": 1, "b": 1, "c": 1}},
		{name: "the load wins over the holder",
			in: Input{Desired: 1, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a", "b"), ImageHolders: holders("b"),
				Load: map[string]int{"a": 0, "b": 1}},
			wantPerNode: map[string]int{"a": 1}},
		{name: "maxPerNode wins over the holder",
			in:          Input{Desired: 2, SpecHash: "h1", MaxSurge: 2, MaxPerNode: 1, Nodes: nodes("a", "b"), ImageHolders: holders("b")},
			wantPerNode: map[string]int{"a": 1, "b": 1}},
		{name: "a holder the selector refuses gets nothing",
			in: Input{Desired: 2, SpecHash: "h1", MaxSurge: 2, Nodes: labelled, NodeSelector: map[string]string{"disk": "ssd"},
				ImageHolders: holders("b")},
			wantPerNode: map[string]int{"a": 1, "c": 1}},
		{name: "a cordoned holder gets nothing",
			in: Input{Desired: 1, SpecHash: "h1", MaxSurge: 1, ImageHolders: holders("a"),
				Nodes: []NodeInfo{{Name: "a", Healthy: true, Unschedulable: true}, {Name: "b", Healthy: true}}},
			wantPerNode: map[string]int{"b": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Compute(c.in)
			if got := perNodeCount(p.Assignments); !reflect.DeepEqual(got, c.wantPerNode) {
				t.Errorf("per node %v, want %v", got, c.wantPerNode)
			}
		})
	}
}

func TestImageHoldersFromView(t *testing.T) {
	set := observed.NewSet()
	set.SetNode(observed.Node{Name: "n1", Alive: true})
	set.SetNode(observed.Node{Name: "n2", Alive: true})
	set.SetNodeImages("n2", []uint64{observed.ImageKey("docker.io/library/web:1")})
	if got := imageHolders(set, "web:1"); !reflect.DeepEqual(got, map[string]bool{"n2": true}) {
		t.Fatalf("imageHolders = %v", got)
	}
	if got := imageHolders(set, "web:2"); got != nil {
		t.Fatalf("imageHolders of an image nobody holds = %v", got)
	}
	if got := imageHolders(nil, "web:1"); got != nil {
		t.Fatalf("imageHolders without a view = %v", got)
	}
}
