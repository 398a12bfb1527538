package nodehealth

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func node(name string, status v1.ConditionStatus, reason v1.ConditionReason, at time.Time) *v1.Node {
	n := &v1.Node{Metadata: v1.ObjectMeta{Name: name}}
	if status != "" {
		n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: status, Reason: reason, LastTransitionTime: at}}
	}
	return n
}

func alive(name string) observed.Node {
	return observed.Node{Name: name, Alive: true, State: observed.StateAlive}
}

func gone(name, state string, at time.Time) observed.Node {
	return observed.Node{Name: name, State: state, LastChange: at}
}

func TestVerdicts(t *testing.T) {
	grace := 30 * time.Second
	cases := []struct {
		name    string
		node    *v1.Node
		view    *observed.Node
		noView  bool
		now     time.Time
		want    Verdict
		reason  v1.ConditionReason
		recheck time.Time
	}{
		{name: "alive in gossip", view: ptr(alive("n")), now: t0, want: Ready, reason: v1.ReasonNodeAlive},
		{name: "alive in gossip beats a stale NotReady in the store", node: node("n", v1.ConditionFalse, v1.ReasonNodeDead, t0), view: ptr(alive("n")), now: t0, want: Ready},
		{name: "dead in gossip", view: ptr(gone("n", observed.StateDead, t0)), now: t0, want: Lost, reason: v1.ReasonNodeDead},
		{name: "left without the restart marker", view: ptr(gone("n", observed.StateLeft, t0)), now: t0, want: Lost, reason: v1.ReasonNodeLeft},
		{name: "restarting inside the grace", view: ptr(gone("n", observed.StateRestarting, t0)), now: t0.Add(29 * time.Second), want: Restarting, reason: v1.ReasonNodeRestarting, recheck: t0.Add(grace)},
		{name: "restarting past the grace", view: ptr(gone("n", observed.StateRestarting, t0)), now: t0.Add(grace), want: Lost, reason: v1.ReasonNodeRestarting},
		{name: "Ready in the store, absent from the view: unknown, not lost", node: node("n", v1.ConditionTrue, v1.ReasonNodeAlive, t0), view: ptr(alive("self")), now: t0.Add(time.Hour), want: Unknown},
		{name: "Unknown in the store, absent from the view", node: node("n", v1.ConditionUnknown, v1.ReasonNodeUnknown, t0), view: ptr(alive("self")), now: t0.Add(time.Hour), want: Unknown},
		{name: "no condition, absent from the view", node: node("n", "", "", t0), view: ptr(alive("self")), now: t0, want: Unknown},
		{name: "an empty view is no gossip at all: the store's Ready counts", node: node("n", v1.ConditionTrue, v1.ReasonNodeAlive, t0), now: t0, want: Ready},
		{name: "recorded dead, forgotten by gossip", node: node("n", v1.ConditionFalse, v1.ReasonNodeDead, t0), view: ptr(alive("self")), now: t0.Add(time.Hour), want: Lost, reason: v1.ReasonNodeDead},
		{name: "recorded restarting, forgotten by gossip, inside the grace", node: node("n", v1.ConditionUnknown, v1.ReasonNodeRestarting, t0), view: ptr(alive("self")), now: t0.Add(10 * time.Second), want: Restarting, recheck: t0.Add(grace)},
		{name: "recorded restarting, forgotten by gossip, past the grace", node: node("n", v1.ConditionUnknown, v1.ReasonNodeRestarting, t0), view: ptr(alive("self")), now: t0.Add(time.Minute), want: Lost},
		{name: "no gossip at all: the store's Ready counts", node: node("n", v1.ConditionTrue, v1.ReasonNodeAlive, t0), noView: true, now: t0, want: Ready},
		{name: "no gossip at all: the store's NotReady counts", node: node("n", v1.ConditionFalse, v1.ReasonNodeDead, t0), noView: true, now: t0, want: Lost},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Input{Now: c.now, NoView: c.noView, Policy: Policy{RestartGrace: grace}}
			if c.node != nil {
				in.Nodes = []*v1.Node{c.node}
			}
			if c.view != nil {
				in.View = []observed.Node{*c.view} // "self": the agent's own entry; n is absent
			}
			n, ok := Evaluate(in).Get("n")
			if !ok {
				t.Fatal("node missing from the report")
			}
			if n.Verdict != c.want {
				t.Fatalf("verdict %s (%s: %s), want %s", n.Verdict, n.Reason, n.Message, c.want)
			}
			if c.reason != "" && n.Reason != c.reason {
				t.Errorf("reason %q, want %q", n.Reason, c.reason)
			}
			if !n.RecheckAt.Equal(c.recheck) {
				t.Errorf("recheck at %v, want %v", n.RecheckAt, c.recheck)
			}
		})
	}
}

func TestDisruptionBrake(t *testing.T) {
	ready := func(n string) *v1.Node { return node(n, v1.ConditionTrue, v1.ReasonNodeAlive, t0) }
	cases := []struct {
		name   string
		view   []observed.Node
		braked bool
		acts   map[string]bool
	}{
		{name: "one of three dead: acted on", view: []observed.Node{alive("a"), alive("b"), gone("c", observed.StateDead, t0)},
			acts: map[string]bool{"a": false, "b": false, "c": true}},
		{name: "a holder that sees only itself: two unknown, nothing acted on", view: []observed.Node{alive("a")},
			braked: true, acts: map[string]bool{"b": false, "c": false}},
		{name: "two of three dead: the brake holds", view: []observed.Node{alive("a"), gone("b", observed.StateDead, t0), gone("c", observed.StateDead, t0)},
			braked: true, acts: map[string]bool{"b": false, "c": false}},
		{name: "one restarting and one dead of three: the brake holds", view: []observed.Node{alive("a"), gone("b", observed.StateRestarting, t0), gone("c", observed.StateDead, t0)},
			braked: true, acts: map[string]bool{"c": false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := Evaluate(Input{Nodes: []*v1.Node{ready("a"), ready("b"), ready("c")}, View: c.view, Now: t0.Add(time.Second)})
			if rep.Braked != c.braked {
				t.Fatalf("braked %v, want %v (%d of %d not ready)", rep.Braked, c.braked, rep.NotReady, rep.Total)
			}
			for n, want := range c.acts {
				if got := rep.Acts(n); got != want {
					t.Errorf("Acts(%s) = %v, want %v (verdict %s)", n, got, want, rep.Verdict(n))
				}
			}
			if msg := rep.BrakeMessage(); c.braked != (msg != "") || (c.braked && !strings.Contains(msg, "of 3 nodes")) {
				t.Errorf("brake message %q", msg)
			}
		})
	}
	// Two nodes, one dead: half is not more than half, so the survivor takes over.
	rep := Evaluate(Input{Nodes: []*v1.Node{ready("a"), ready("b")}, View: []observed.Node{alive("a"), gone("b", observed.StateDead, t0)}, Now: t0})
	if rep.Braked || !rep.Acts("b") {
		t.Fatalf("two nodes, one dead: braked=%v acts=%v", rep.Braked, rep.Acts("b"))
	}
}

func TestLabelsAndAddresses(t *testing.T) {
	n := node("n", v1.ConditionTrue, v1.ReasonNodeAlive, t0)
	n.Metadata.Labels = map[string]string{"role": "lb", "zone": "a"}
	n.Spec.Labels = map[string]string{"zone": "b"}
	n.Spec.Unschedulable = true
	n.Status.Addresses.Advertise = "10.0.0.9"
	v := alive("n")
	v.Labels = map[string]string{"disk": "ssd", "zone": "c", observed.LabelRuntime: observed.RuntimeNone}
	v.Advertise = "10.0.0.1:7482"
	got, _ := Evaluate(Input{Nodes: []*v1.Node{n}, View: []observed.Node{v}, Now: t0}).Get("n")
	want := map[string]string{"role": "lb", "zone": "b", "disk": "ssd", observed.LabelRuntime: observed.RuntimeNone}
	if len(got.Labels) != len(want) {
		t.Fatalf("labels %v, want %v", got.Labels, want)
	}
	for k, v := range want {
		if got.Labels[k] != v {
			t.Fatalf("labels %v, want %v", got.Labels, want)
		}
	}
	if got.Address != "10.0.0.9" || !got.Unschedulable || !got.NoRuntime || !got.Registered {
		t.Fatalf("got %+v", got)
	}
	// A node only gossip knows (not registered yet) still has its gossip address, host only.
	got, _ = Evaluate(Input{View: []observed.Node{v}, Now: t0}).Get("n")
	if got.Address != "10.0.0.1" || got.Registered || got.Verdict != Ready {
		t.Fatalf("gossip-only node: %+v", got)
	}
	// A node nobody knows was removed: lost.
	if Evaluate(Input{Now: t0}).Verdict("ghost") != Lost {
		t.Fatal("an unknown name must be lost (its Node object was deleted)")
	}
}

func TestNextRecheck(t *testing.T) {
	rep := Evaluate(Input{View: []observed.Node{alive("a"), gone("b", observed.StateRestarting, t0), gone("c", observed.StateRestarting, t0.Add(5*time.Second))},
		Now: t0.Add(time.Second), Policy: Policy{RestartGrace: 10 * time.Second}})
	if got := rep.NextRecheck(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next recheck %v", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestZeroPolicyIsTheDefault: the zero Policy every caller's Config starts with takes
// DefaultRestartGrace (the Config comments of dns, scheduler and traefik say so).
func TestZeroPolicyIsTheDefault(t *testing.T) {
	if got := (Policy{}).withDefaults(); got.RestartGrace != DefaultRestartGrace {
		t.Errorf("zero Policy: RestartGrace %s, want %s", got.RestartGrace, DefaultRestartGrace)
	}
	if got := (Policy{RestartGrace: time.Second}).withDefaults(); got.RestartGrace != time.Second {
		t.Errorf("RestartGrace 1s became %s", got.RestartGrace)
	}
}
