package scheduler

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// TestCoPlacement: dependents go only where a ready owner replica runs, stay while the owner is
// assigned there, and follow it when it is re-placed.
func TestCoPlacement(t *testing.T) {
	cp := func(ready []string, assigned ...string) *CoPlacement {
		c := &CoPlacement{Owner: "warp", Ready: map[string]bool{}, Assigned: map[string]bool{}}
		for _, n := range ready {
			c.Ready[n] = true
		}
		for _, n := range assigned {
			c.Assigned[n] = true
		}
		return c
	}
	placed := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}}
	cases := []struct {
		name         string
		in           Input
		wantPerNode  map[string]int
		wantUnplaced int32
	}{
		{"only next to a ready owner", Input{Desired: 2, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a", "b", "c"), CoPlace: cp([]string{"b"}, "b", "c")},
			map[string]int{"b": 2}, 0},
		{"owner assigned but not ready yet: wait", Input{Desired: 1, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a", "b"), CoPlace: cp(nil, "a")},
			map[string]int{}, 1},
		{"owner restarting: the dependent keeps its assignment", Input{Desired: 1, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a", "b"),
			Assignments: placed, Observed: map[int32]ReplicaInfo{0: {Node: "a", SpecHash: "h"}}, CoPlace: cp(nil, "a")},
			map[string]int{"a": 1}, 0},
		{"owner re-placed on b: the dependent follows", Input{Desired: 1, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a", "b"),
			Assignments: placed, Observed: map[int32]ReplicaInfo{}, CoPlace: cp([]string{"b"}, "b")},
			map[string]int{"b": 1}, 0},
		{"no owner anywhere: unschedulable", Input{Desired: 1, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a"), CoPlace: cp(nil)},
			map[string]int{}, 1},
		{"gateway avoids the node where healing gave up", Input{Desired: 1, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a", "b"),
			Assignments: placed, Observed: map[int32]ReplicaInfo{}, Avoid: map[string]bool{"a": true}},
			map[string]int{"b": 1}, 0},
		{"every node avoided: gives up (unplaced, no loop)", Input{Desired: 1, SpecHash: "h", MaxSurge: 1, Nodes: nodes("a", "b"),
			Avoid: map[string]bool{"a": true, "b": true}},
			map[string]int{}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Compute(c.in)
			if got := perNodeCount(p.Assignments); !reflect.DeepEqual(got, c.wantPerNode) {
				t.Errorf("per node %v, want %v", got, c.wantPerNode)
			}
			if p.Unplaced != c.wantUnplaced {
				t.Errorf("unplaced %d, want %d", p.Unplaced, c.wantUnplaced)
			}
		})
	}
}

func TestAvoidanceExpires(t *testing.T) {
	var a avoidance
	now := time.Unix(1000, 0)
	got := a.update("warp", []observed.Replica{{Node: "a", Reason: v1.ReasonEgressFailed}, {Node: "b"}}, now)
	if !reflect.DeepEqual(got, map[string]bool{"a": true}) {
		t.Fatalf("got %v", got)
	}
	if got := a.update("warp", nil, now.Add(AvoidFor-time.Second)); !got["a"] {
		t.Fatal("forgot too early")
	}
	if got := a.update("warp", nil, now.Add(AvoidFor)); len(got) != 0 {
		t.Fatalf("kept %v", got)
	}
}
