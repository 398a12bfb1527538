package scheduler

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// lostSince is when node b of the sticky tests was lost.
var lostSince = time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)

// stickyInput: three replicas on a, b, c; b is lost (neither Healthy nor Held).
func stickyInput(sticky bool) Input {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h"}, {Index: 2, Node: "c", SpecHash: "h"}}
	ns := []NodeInfo{{Name: "a", Healthy: true}, {Name: "b", Since: lostSince}, {Name: "c", Healthy: true}}
	obs := readyAll(as)
	delete(obs, 1) // nothing reports from a lost node
	return Input{Desired: 3, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: obs, Nodes: ns, Sticky: sticky}
}

// checkOnePerIndex fails when an index has more than one assignment.
func checkOnePerIndex(t *testing.T, as []v1.Assignment) {
	t.Helper()
	seen := map[int32]bool{}
	for _, a := range as {
		if seen[a.Index] {
			t.Fatalf("index %d assigned twice: %v", a.Index, as)
		}
		seen[a.Index] = true
	}
}

// placement is as without the waiting marks: where each index is, and with what spec.
func placement(as []v1.Assignment) []v1.Assignment {
	out := slices.Clone(as)
	for i := range out {
		out[i].WaitingSince = nil
	}
	return out
}

// waitingAt returns as with index idx marked waiting since t.
func waitingAt(as []v1.Assignment, idx int32, t time.Time) []v1.Assignment {
	out := slices.Clone(as)
	for i := range out {
		if out[i].Index == idx {
			out[i].WaitingSince = &t
		}
	}
	return out
}

func TestStickyReplicaWaitsForLostNode(t *testing.T) {
	in := stickyInput(true)
	p := Compute(in)
	if want := waitingAt(in.Assignments, 1, lostSince); !reflect.DeepEqual(p.Assignments, want) {
		t.Fatalf("assignments: got %v, want %v (index 1 waiting since the node was lost)", p.Assignments, want)
	}
	c := p.Progressing
	if c.Status != v1.ConditionFalse || c.Reason != v1.ReasonWaitingForNode {
		t.Fatalf("condition %+v, want False/%s", c, v1.ReasonWaitingForNode)
	}
	if want := "1 on b (lost since 2026-12-02T02:00:00Z)"; !strings.Contains(c.Message, want) {
		t.Errorf("message %q does not contain %q", c.Message, want)
	}
	if !reflect.DeepEqual(p.Waiting, []string{"1 on b (lost since 2026-12-02T02:00:00Z)"}) || p.Complete {
		t.Errorf("waiting %v complete %v", p.Waiting, p.Complete)
	}
	// A lost node that has left the report entirely: still waiting, since unknown; with a clock
	// reading, since then; and once recorded, the recorded time stays whatever the node report
	// says later.
	in.Nodes = []NodeInfo{in.Nodes[0], in.Nodes[2]}
	if p := Compute(in); !reflect.DeepEqual(p.Assignments, in.Assignments) || !strings.Contains(p.Progressing.Message, "1 on b (lost since unknown)") {
		t.Errorf("node gone from the report: %v %q", p.Assignments, p.Progressing.Message)
	}
	now := lostSince.Add(time.Hour)
	in.Now = now
	p = Compute(in)
	if want := waitingAt(in.Assignments, 1, now); !reflect.DeepEqual(p.Assignments, want) {
		t.Errorf("no since from the report: assignments %v, want waiting since now %v", p.Assignments, want)
	}
	in.Assignments, in.Now = p.Assignments, now.Add(time.Hour)
	in.Nodes = stickyInput(true).Nodes
	if p := Compute(in); !reflect.DeepEqual(p.Assignments, in.Assignments) || !strings.Contains(p.Progressing.Message, "1 on b (lost since "+now.Format(time.RFC3339)+")") {
		t.Errorf("recorded since not kept: %v %q", p.Assignments, p.Progressing.Message)
	}
	// The node is back: the mark goes.
	in.Nodes[1].Healthy = true
	in.Observed = readyAll(in.Assignments)
	if p := Compute(in); !reflect.DeepEqual(p.Assignments, stickyInput(true).Assignments) {
		t.Errorf("node back: assignments %v, want no waiting mark", p.Assignments)
	}
}

func TestLostReplicaReplacedWithoutStickyVolumes(t *testing.T) {
	// placement.volumes: recreate, a bind mount only, or no volume: Input.Sticky is false
	// (v1.ServiceSpec.StickyVolumes) and the replica of b is placed again.
	p := Compute(stickyInput(false))
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "a", SpecHash: "h"}, {Index: 2, Node: "c", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) {
		t.Errorf("got %v, want %v", p.Assignments, want)
	}
	if p.Progressing.Reason == v1.ReasonWaitingForNode || len(p.Waiting) > 0 {
		t.Errorf("waiting without sticky volumes: %+v %v", p.Progressing, p.Waiting)
	}
}

func TestStickyFromSpec(t *testing.T) {
	// The scheduler's input follows the spec: named volume → sticky; recreate, bind mount only
	// or no volume → not.
	for _, c := range []struct {
		name string
		spec v1.ServiceSpec
		want bool
	}{
		{"named", v1.ServiceSpec{Volumes: []v1.VolumeMount{{Source: "pg", Target: "/data"}}}, true},
		{"recreate", v1.ServiceSpec{Volumes: []v1.VolumeMount{{Source: "pg", Target: "/data"}}, Placement: &v1.Placement{Volumes: v1.VolumesRecreate}}, false},
		{"bind", v1.ServiceSpec{Volumes: []v1.VolumeMount{{Source: "/srv/pg", Target: "/data"}}}, false},
		{"none", v1.ServiceSpec{}, false},
	} {
		in := stickyInput(c.spec.StickyVolumes())
		p := Compute(in)
		if moved := !reflect.DeepEqual(placement(p.Assignments), placement(in.Assignments)); moved == c.want {
			t.Errorf("%s: sticky %v, replica 1 moved %v: %v", c.name, c.want, moved, p.Assignments)
		}
	}
}

func TestStickyReplicaResumesWhenNodeReturns(t *testing.T) {
	in := stickyInput(true)
	steps := []func(*Input){
		func(*Input) {}, // lost: waits
		func(in *Input) { in.Nodes[1].Held = true },                          // unknown/restarting: held
		func(in *Input) { in.Nodes[1] = NodeInfo{Name: "b", Healthy: true} }, // back, replica starting
		func(in *Input) { in.Observed = readyAll(in.Assignments) },           // ready there
	}
	orig := append([]v1.Assignment(nil), in.Assignments...)
	var p Plan
	for i, step := range steps {
		step(&in)
		p = Compute(in)
		checkOnePerIndex(t, p.Assignments)
		if !reflect.DeepEqual(placement(p.Assignments), orig) {
			t.Fatalf("step %d: assignments %v, want %v", i, p.Assignments, orig)
		}
		if waiting := p.Assignments[1].WaitingSince != nil; waiting != (i == 0) {
			t.Errorf("step %d: index 1 waiting %v", i, waiting)
		}
		in.Assignments = p.Assignments
	}
	if !p.Complete || p.Progressing.Reason != v1.ReasonRolloutComplete {
		t.Errorf("after return: %+v complete %v", p.Progressing, p.Complete)
	}
}

func TestStickyWaitingIndexNeverDuplicated(t *testing.T) {
	// Whatever else happens (scale up, an update of the live replicas), the waiting index is
	// never given a second assignment and stays on b.
	in := stickyInput(true)
	in.Desired = 5
	for step := 0; step < 10; step++ {
		if step == 3 {
			in.SpecHash = "h2"
		}
		p := Compute(in)
		checkOnePerIndex(t, p.Assignments)
		found := false
		for _, a := range p.Assignments {
			if a.Index == 1 {
				found = a.Node == "b"
			}
		}
		if !found {
			t.Fatalf("step %d: index 1 left b: %v", step, p.Assignments)
		}
		in.Assignments = p.Assignments
		in.Observed = readyAll(p.Assignments)
		delete(in.Observed, 1)
	}
	if got := len(in.Assignments); got != 5 {
		t.Errorf("%d assignments, want 5: %v", got, in.Assignments)
	}
}

func TestStickyScaleDownDropsWaitingFirst(t *testing.T) {
	in := stickyInput(true)
	in.Desired = 2
	p := Compute(in)
	want := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 2, Node: "c", SpecHash: "h"}}
	if !reflect.DeepEqual(p.Assignments, want) || !p.Complete {
		t.Errorf("got %v %+v, want %v", p.Assignments, p.Progressing, want)
	}
	// Scaling to 1 then removes a live replica too, the highest index.
	in.Desired = 1
	p = Compute(in)
	if want := want[:1]; !reflect.DeepEqual(p.Assignments, want) {
		t.Errorf("got %v, want %v", p.Assignments, want)
	}
}

func TestStickyReplicaNotMovedByDrainOrSpread(t *testing.T) {
	as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "a", SpecHash: "h"}, {Index: 2, Node: "b", SpecHash: "h"}}
	ns := []NodeInfo{{Name: "a", Healthy: true, Unschedulable: true, Drain: true}, {Name: "b", Healthy: true}, {Name: "c", Healthy: true}}
	in := Input{Desired: 3, SpecHash: "h", MaxSurge: 1, Assignments: as, Observed: readyAll(as), Nodes: ns, Sticky: true}
	p := Compute(in)
	if !reflect.DeepEqual(p.Assignments, as) {
		t.Fatalf("drain moved a sticky replica: %v", p.Assignments)
	}
	if !reflect.DeepEqual(p.Pinned, []string{"0 on a", "1 on a"}) || !strings.Contains(p.Progressing.Message, "replicas 0 on a, 1 on a stay on their draining node") {
		t.Errorf("pinned %v, message %q", p.Pinned, p.Progressing.Message)
	}
	// Not draining any more: a, b, c differ by two, but a sticky replica is not spread back.
	in.Nodes[0].Drain, in.Nodes[0].Unschedulable = false, false
	if p := Compute(in); !reflect.DeepEqual(p.Assignments, as) || !p.Complete {
		t.Errorf("spread moved a sticky replica: %v %+v", p.Assignments, p.Progressing)
	}
	// Without sticky volumes the drain moves them, as before.
	in.Nodes[0].Drain, in.Sticky = true, false
	if p := Compute(in); reflect.DeepEqual(p.Assignments, as) {
		t.Errorf("drain moved nothing without sticky volumes")
	}
}

func TestStickyUpdateStaysOnTheVolumesNode(t *testing.T) {
	// One replica on a, an emptier node b: the new revision is created on a (start-first and
	// stop-first), never on b's empty volume.
	for _, order := range []struct {
		name           string
		surge, unavail int32
	}{{"start-first", 1, 0}, {"stop-first", 0, 1}} {
		t.Run(order.name, func(t *testing.T) {
			as := []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h1"}}
			in := Input{Desired: 1, SpecHash: "h2", MaxSurge: order.surge, MaxUnavailable: order.unavail,
				Assignments: as, Observed: readyAll(as), Nodes: nodes("a", "b"), Load: map[string]int{"a": 5}, Sticky: true}
			for step := 0; step < 6; step++ {
				p := Compute(in)
				checkOnePerIndex(t, p.Assignments)
				for _, a := range p.Assignments {
					if a.Node != "a" {
						t.Fatalf("step %d: replica %d placed on %s: %v", step, a.Index, a.Node, p.Assignments)
					}
				}
				in.Assignments, in.Observed = p.Assignments, readyAll(p.Assignments)
			}
			// (stop-first frees index 0 before the new replica takes the lowest free index.)
			if len(in.Assignments) != 1 || in.Assignments[0].Node != "a" || in.Assignments[0].SpecHash != "h2" {
				t.Errorf("got %v, want one h2 replica on a", in.Assignments)
			}
		})
	}
}

func TestReconcileStickyReplicaWaitsForDeadNode(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	view := observed.NewSet()
	for _, n := range []string{"a", "b", "c"} {
		addNode(t, st, n)
		view.SetNode(observed.Node{Name: n, Alive: true})
	}
	s, err := New(Config{Store: st, View: view, Clock: clocktesting.NewFakePassiveClock(time.Unix(1000, 0))})
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "pg"},
		Spec: v1.ServiceSpec{Image: "postgres:17", Replicas: &three, Volumes: []v1.VolumeMount{{Source: "pgdata", Target: "/var/lib/postgresql"}}}}
	if _, err := st.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	before := getSvc(t, st, "pg").Status.Assignments
	if got := perNodeCount(before); got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("placed %v", before)
	}
	// b dies.
	view.SetNode(observed.Node{Name: "b", State: "dead", LastChange: time.Unix(900, 0)})
	if _, err := s.Reconcile(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	got := getSvc(t, st, "pg")
	if !reflect.DeepEqual(placement(got.Status.Assignments), before) {
		t.Errorf("assignments %v, want unchanged %v", got.Status.Assignments, before)
	}
	for _, a := range got.Status.Assignments {
		if want := a.Node == "b"; (a.WaitingSince != nil) != want || want && !a.WaitingSince.Equal(time.Unix(900, 0)) {
			t.Errorf("assignment %d on %s: waiting since %v", a.Index, a.Node, a.WaitingSince)
		}
	}
	c := v1.FindCondition(got.Status.Conditions, v1.ServiceProgressing)
	var idx int32 = -1
	for _, a := range before {
		if a.Node == "b" {
			idx = a.Index
		}
	}
	want := fmt.Sprintf("%d on b (lost since %s)", idx, time.Unix(900, 0).UTC().Format(time.RFC3339))
	if c == nil || c.Reason != v1.ReasonWaitingForNode || !strings.Contains(c.Message, want) {
		t.Errorf("condition %+v, want %s naming %q", c, v1.ReasonWaitingForNode, want)
	}
}
