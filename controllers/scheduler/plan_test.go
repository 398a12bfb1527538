package scheduler

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func nodes(names ...string) []NodeInfo {
	var out []NodeInfo
	for _, n := range names {
		out = append(out, NodeInfo{Name: n, Healthy: true})
	}
	return out
}

func perNodeCount(as []v1.Assignment) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[a.Node]++
	}
	return m
}

// readyAll reports every assignment as ready on its node with its hash.
func readyAll(as []v1.Assignment) map[int32]ReplicaInfo {
	m := map[int32]ReplicaInfo{}
	for _, a := range as {
		m[a.Index] = ReplicaInfo{Node: a.Node, SpecHash: a.SpecHash, Ready: true}
	}
	return m
}

func TestPlacement(t *testing.T) {
	labelled := []NodeInfo{
		{Name: "a", Healthy: true, Labels: map[string]string{"disk": "ssd"}},
		{Name: "b", Healthy: true},
		{Name: "c", Healthy: true, Labels: map[string]string{"disk": "ssd"}},
	}
	cases := []struct {
		name         string
		in           Input
		wantPerNode  map[string]int
		wantUnplaced int32
		wantReason   v1.ConditionReason
	}{
		{name: "spread over three nodes", in: Input{Desired: 5, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a", "b", "c")},
			wantPerNode: map[string]int{"a": 2, "b": 2, "c": 1}, wantReason: v1.ReasonRollingUpdate},
		{name: "load breaks ties", in: Input{Desired: 2, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a", "b", "c"), Load: map[string]int{"a": 5, "b": 1, "c": 0}},
			wantPerNode: map[string]int{"b": 1, "c": 1}, wantReason: v1.ReasonRollingUpdate},
		{name: "node selector", in: Input{Desired: 4, SpecHash: "h1", MaxSurge: 1, Nodes: labelled, NodeSelector: map[string]string{"disk": "ssd"}},
			wantPerNode: map[string]int{"a": 2, "c": 2}, wantReason: v1.ReasonRollingUpdate},
		{name: "selector matches nothing", in: Input{Desired: 2, SpecHash: "h1", MaxSurge: 1, Nodes: labelled, NodeSelector: map[string]string{"disk": "nvme"}},
			wantPerNode: map[string]int{}, wantUnplaced: 2, wantReason: v1.ReasonUnschedulable},
		{name: "maxPerNode caps", in: Input{Desired: 3, SpecHash: "h1", MaxSurge: 1, MaxPerNode: 1, Nodes: nodes("a", "b")},
			wantPerNode: map[string]int{"a": 1, "b": 1}, wantUnplaced: 1, wantReason: v1.ReasonUnschedulable},
		{name: "cordoned and draining nodes get nothing", in: Input{Desired: 2, SpecHash: "h1", MaxSurge: 1,
			Nodes: []NodeInfo{{Name: "a", Healthy: true, Unschedulable: true}, {Name: "b", Healthy: true, Drain: true}, {Name: "c", Healthy: true}}},
			wantPerNode: map[string]int{"c": 2}, wantReason: v1.ReasonRollingUpdate},
		{name: "nodes without a container runtime get nothing", in: Input{Desired: 2, SpecHash: "h1", MaxSurge: 1,
			Nodes: []NodeInfo{{Name: "a", Healthy: true, NoRuntime: true}, {Name: "b", Healthy: true}}},
			wantPerNode: map[string]int{"b": 2}, wantReason: v1.ReasonRollingUpdate},
		{name: "unhealthy nodes get nothing", in: Input{Desired: 1, SpecHash: "h1", MaxSurge: 1, Nodes: []NodeInfo{{Name: "a"}, {Name: "b", Healthy: true}}},
			wantPerNode: map[string]int{"b": 1}, wantReason: v1.ReasonRollingUpdate},
		{name: "no nodes", in: Input{Desired: 1, SpecHash: "h1", MaxSurge: 1},
			wantPerNode: map[string]int{}, wantUnplaced: 1, wantReason: v1.ReasonUnschedulable},
		{name: "scaled to zero", in: Input{Desired: 0, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a")},
			wantPerNode: map[string]int{}, wantReason: v1.ReasonRolloutComplete},
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
			if p.Progressing.Reason != c.wantReason {
				t.Errorf("reason %s (%s), want %s", p.Progressing.Reason, p.Progressing.Message, c.wantReason)
			}
			for i, a := range p.Assignments {
				if a.Index != int32(i) || a.SpecHash != c.in.SpecHash {
					t.Errorf("assignment %d = %+v", i, a)
				}
			}
		})
	}
}

func TestKeepsCordonedAndMovesOffDeadNodes(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h"}, {Index: 2, Node: "c", SpecHash: "h"}}
	ns := []NodeInfo{{Name: "a", Healthy: true, Unschedulable: true}, {Name: "b"}, {Name: "c", Healthy: true}}
	p := Compute(Input{Desired: 3, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: readyAll(as), Nodes: ns})
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "c", SpecHash: "h"}, {Index: 2, Node: "c", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) {
		t.Errorf("got %v, want %v", p.Assignments, want)
	}
}

func TestSpreadBackWhenNodeReturns(t *testing.T) {
	// b was dead, everything ran on a; b is back.
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "a", SpecHash: "h"}, {Index: 2, Node: "a", SpecHash: "h"}, {Index: 3, Node: "a", SpecHash: "h"}}
	in := Input{Desired: 4, SpecHash: "h", MaxSurge: 1, MaxUnavailable: 0, Assignments: as, Observed: readyAll(as), Nodes: nodes("a", "b")}
	steps := 0
	for ; steps < 20; steps++ {
		p := Compute(in)
		checkAvailability(t, in, p, 4)
		if reflect.DeepEqual(p.Assignments, in.Assignments) && p.Complete {
			break
		}
		// Replicas created in this step become ready for the next one.
		in.Observed = readyAll(p.Assignments)
		in.Assignments = p.Assignments
	}
	if got := perNodeCount(in.Assignments); got["a"] != 2 || got["b"] != 2 {
		t.Errorf("after %d steps: %v", steps, in.Assignments)
	}
}

// checkAvailability asserts that the plan never leaves fewer than desired-maxUnavailable ready
// replicas (those created in this step are not ready yet) nor more than desired+maxSurge.
func checkAvailability(t *testing.T, in Input, p Plan, desired int) {
	t.Helper()
	ready := 0
	for _, a := range p.Assignments {
		if o, ok := in.Observed[a.Index]; ok && o.Ready && o.Node == a.Node && o.SpecHash == a.SpecHash {
			ready++
		}
	}
	surge, unavail := int(in.MaxSurge), int(in.MaxUnavailable)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	wasReady := 0
	for _, a := range in.Assignments {
		if o, ok := in.Observed[a.Index]; ok && o.Ready && o.Node == a.Node && o.SpecHash == a.SpecHash {
			wasReady++
		}
	}
	if ready < desired-unavail && ready < wasReady {
		t.Fatalf("ready %d < %d-%d after plan %v (from %v)", ready, desired, unavail, p.Assignments, in.Assignments)
	}
	if len(p.Assignments) > desired+surge {
		t.Fatalf("%d replicas > %d+%d: %v", len(p.Assignments), desired, surge, p.Assignments)
	}
}

func TestRollingUpdateSteps(t *testing.T) {
	for _, c := range []struct {
		replicas, surge, unavail int32
		maxSteps                 int
	}{
		{1, 1, 0, 3}, {3, 1, 0, 7}, {3, 0, 1, 7}, {5, 2, 0, 7}, {5, 0, 2, 7}, {4, 1, 1, 5}, {2, 0, 0, 5}, {3, 3, 0, 3},
	} {
		t.Run(fmt.Sprintf("n%d-surge%d-unavail%d", c.replicas, c.surge, c.unavail), func(t *testing.T) {
			var as []v1.Assignment
			for i := range c.replicas {
				as = append(as, v1.Assignment{Index: i, Node: []string{"a", "b", "c"}[i%3], SpecHash: "old"})
			}
			in := Input{Desired: c.replicas, SpecHash: "new", MaxSurge: c.surge, MaxUnavailable: c.unavail,
				Assignments: as, Observed: readyAll(as), Nodes: nodes("a", "b", "c")}
			var trace []string
			for step := 0; ; step++ {
				p := Compute(in)
				checkAvailability(t, in, p, int(c.replicas))
				trace = append(trace, fmt.Sprint(p.Assignments))
				if p.Complete {
					if step > c.maxSteps {
						t.Errorf("complete after %d steps, want at most %d:\n%s", step, c.maxSteps, strings.Join(trace, "\n"))
					}
					for _, a := range p.Assignments {
						if a.SpecHash != "new" {
							t.Errorf("old replica left: %v", p.Assignments)
						}
					}
					if len(p.Assignments) != int(c.replicas) {
						t.Errorf("%d replicas at the end", len(p.Assignments))
					}
					return
				}
				if p.Progressing.Reason != v1.ReasonRollingUpdate {
					t.Fatalf("step %d: %+v", step, p.Progressing)
				}
				if step > 20 {
					t.Fatalf("no convergence:\n%s", strings.Join(trace, "\n"))
				}
				in.Observed = readyAll(p.Assignments)
				in.Assignments = p.Assignments
			}
		})
	}
}

func TestStartFirstKeepsOldUntilNewReady(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "old"}}
	in := Input{Desired: 1, SpecHash: "new", MaxSurge: 1, Assignments: as, Observed: readyAll(as), Nodes: nodes("a")}
	p := Compute(in)
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "old"}, {Index: 1, Node: "a", SpecHash: "new"}}
	if !reflect.DeepEqual(p.Assignments, want) {
		t.Fatalf("got %v", p.Assignments)
	}
	// The new one is starting: nothing changes.
	in.Assignments = p.Assignments
	in.Observed[1] = ReplicaInfo{Node: "a", SpecHash: "new"}
	if p2 := Compute(in); !reflect.DeepEqual(p2.Assignments, want) {
		t.Fatalf("old removed before new ready: %v", p2.Assignments)
	}
	// Ready: the old one goes.
	in.Observed[1] = ReplicaInfo{Node: "a", SpecHash: "new", Ready: true}
	p3 := Compute(in)
	if !reflect.DeepEqual(p3.Assignments, []v1.Assignment{{Index: 1, Node: "a", SpecHash: "new"}}) || !p3.Complete {
		t.Fatalf("got %v complete=%v", p3.Assignments, p3.Complete)
	}
}

func TestFailedRolloutStops(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "old"}, {Index: 1, Node: "a", SpecHash: "old"}, {Index: 2, Node: "a", SpecHash: "new"}}
	obs := readyAll(as)
	obs[2] = ReplicaInfo{Node: "a", SpecHash: "new", Failed: true, Reason: v1.ReasonCrashLoop, Message: "exit code 3"}
	in := Input{Desired: 2, SpecHash: "new", MaxSurge: 1, Assignments: as, Observed: obs, Nodes: nodes("a", "b")}
	p := Compute(in)
	if !reflect.DeepEqual(p.Assignments, as) {
		t.Errorf("a failed rollout changed placement: %v", p.Assignments)
	}
	if p.Progressing.Status != v1.ConditionFalse || p.Progressing.Reason != v1.ReasonRolloutFailed || !strings.Contains(p.Progressing.Message, "CrashLoop: exit code 3") {
		t.Errorf("condition %+v", p.Progressing)
	}
	// Undo: the spec is back to "old"; the failed new replica goes, nothing else moves.
	in.SpecHash = "old"
	p = Compute(in)
	if !reflect.DeepEqual(p.Assignments, as[:2]) || !p.Complete {
		t.Errorf("after undo: %v %+v", p.Assignments, p.Progressing)
	}
}

func TestProgressDeadline(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "old"}, {Index: 1, Node: "a", SpecHash: "new"}}
	obs := readyAll(as[:1])
	obs[1] = ReplicaInfo{Node: "a", SpecHash: "new", Reason: v1.ReasonUnhealthy}
	in := Input{Desired: 1, SpecHash: "new", MaxSurge: 1, Assignments: as, Observed: obs, Nodes: nodes("a"),
		SinceProgress: time.Minute, ProgressDeadline: 2 * time.Minute}
	if p := Compute(in); p.Progressing.Reason != v1.ReasonRollingUpdate {
		t.Errorf("before the deadline: %+v", p.Progressing)
	}
	in.SinceProgress = 3 * time.Minute
	if p := Compute(in); p.Progressing.Reason != v1.ReasonRolloutFailed || !reflect.DeepEqual(p.Assignments, as) {
		t.Errorf("after the deadline: %+v %v", p.Progressing, p.Assignments)
	}
}

func TestDrainMovesNewFirst(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h"}}
	ns := []NodeInfo{{Name: "a", Healthy: true, Drain: true}, {Name: "b", Healthy: true}, {Name: "c", Healthy: true}}
	in := Input{Desired: 2, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: readyAll(as), Nodes: ns}
	p := Compute(in)
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h"}, {Index: 2, Node: "c", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) {
		t.Fatalf("got %v", p.Assignments)
	}
	in.Assignments, in.Observed = p.Assignments, readyAll(p.Assignments)
	p = Compute(in)
	if !reflect.DeepEqual(p.Assignments, want[1:]) || !p.Complete {
		t.Fatalf("got %v %+v", p.Assignments, p.Progressing)
	}
}

func TestScaleDown(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h"}, {Index: 2, Node: "a", SpecHash: "h"}, {Index: 3, Node: "b", SpecHash: "h"}, {Index: 4, Node: "a", SpecHash: "h"}}
	obs := readyAll(as)
	obs[1] = ReplicaInfo{Node: "b", SpecHash: "h", Failed: true, Reason: v1.ReasonCrashLoop}
	p := Compute(Input{Desired: 2, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: obs, Nodes: nodes("a", "b")})
	// The failed one goes first, then from the crowded node a, highest index first.
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 3, Node: "b", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) {
		t.Errorf("got %v, want %v", p.Assignments, want)
	}
}

func TestComputeDoesNotModifyInput(t *testing.T) {
	as := []v1.Assignment{{Index: 2, Node: "a", SpecHash: "old"}, {Index: 0, Node: "b", SpecHash: "old"}}
	in := Input{Desired: 3, SpecHash: "new", MaxSurge: 1, Assignments: as, Observed: readyAll(as), Nodes: nodes("a", "b")}
	snapshot := fmt.Sprintf("%+v", in)
	Compute(in)
	if fmt.Sprintf("%+v", in) != snapshot {
		t.Error("Compute modified its input")
	}
}

func TestSpreadBackWaitsForTheNewReplica(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "a", SpecHash: "h"}}
	in := Input{Desired: 2, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: readyAll(as), Nodes: nodes("a", "b")}
	p := Compute(in)
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "a", SpecHash: "h"}, {Index: 2, Node: "b", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) {
		t.Fatalf("step 1: %v", p.Assignments)
	}
	// The new replica is starting: neither it nor the one it replaces goes.
	in.Assignments = p.Assignments
	in.Observed[2] = ReplicaInfo{Node: "b", SpecHash: "h"}
	for i := 0; i < 3; i++ {
		if p := Compute(in); !reflect.DeepEqual(p.Assignments, want) {
			t.Fatalf("step 2: %v", p.Assignments)
		}
	}
	in.Observed[2] = ReplicaInfo{Node: "b", SpecHash: "h", Ready: true}
	p = Compute(in)
	if got := perNodeCount(p.Assignments); got["a"] != 1 || got["b"] != 1 {
		t.Fatalf("step 3: %v", p.Assignments)
	}
}

func TestFailedReplicaDoesNotBlockReplacementWithoutUpdate(t *testing.T) {
	// No update in progress: one replica crash-loops, another was lost with its node.
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h"}}
	obs := readyAll(as)
	obs[0] = ReplicaInfo{Node: "a", SpecHash: "h", Failed: true, Reason: v1.ReasonCrashLoop}
	p := Compute(Input{Desired: 2, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: obs,
		Nodes: []NodeInfo{{Name: "a", Healthy: true}, {Name: "b"}, {Name: "c", Healthy: true}}})
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "c", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) || p.Progressing.Reason != v1.ReasonRolloutFailed {
		t.Errorf("got %v %+v", p.Assignments, p.Progressing)
	}
}

// BenchmarkCompute plans one rolling-update step of 500 replicas over 10 nodes.
func BenchmarkCompute(b *testing.B) {
	var ns []string
	for i := range 10 {
		ns = append(ns, fmt.Sprintf("n%d", i))
	}
	var as []v1.Assignment
	for i := range int32(500) {
		as = append(as, v1.Assignment{Index: i, Node: ns[int(i)%10], SpecHash: "old"})
	}
	in := Input{Desired: 500, SpecHash: "new", MaxSurge: 25, MaxUnavailable: 0, Assignments: as, Observed: readyAll(as), Nodes: nodes(ns...)}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}
