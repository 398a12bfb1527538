package scheduler

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// settle runs the planner step by step, every replica becoming ready on its node, until the
// plan stops changing; it fails when a step puts two replicas on one node and one is set.
func settle(t *testing.T, in Input, onePerNode bool) Plan {
	t.Helper()
	var p Plan
	for step := 0; step < 30; step++ {
		in.Observed = readyAll(in.Assignments)
		p = Compute(in)
		if onePerNode {
			for n, c := range perNodeCount(p.Assignments) {
				if c > 1 {
					t.Fatalf("step %d: %d replicas on %s: %+v", step, c, n, p.Assignments)
				}
			}
		}
		if equalAssignments(p.Assignments, in.Assignments) {
			return p
		}
		in.Assignments = p.Assignments
	}
	t.Fatalf("no fixed point: %+v", p)
	return p
}

func equalAssignments(a, b []v1.Assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].Node != b[i].Node || a[i].SpecHash != b[i].SpecHash {
			return false
		}
	}
	return true
}

func nodeSet(as []v1.Assignment) string {
	var out []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if perNodeCount(as)[n] > 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// TestGlobalFollowsNodes: a global Service runs one replica on every matching node, and
// follows nodes joining, being lost, draining, being cordoned and losing their label.
func TestGlobalFollowsNodes(t *testing.T) {
	edge := map[string]string{"role": "edge"}
	ns := []NodeInfo{
		{Name: "a", Healthy: true, Labels: edge}, {Name: "b", Healthy: true, Labels: edge},
		{Name: "c", Healthy: true}, {Name: "d", Healthy: true, Labels: edge},
	}
	in := Input{Global: true, Desired: 1, SpecHash: "h1", MaxUnavailable: 1, Nodes: ns, NodeSelector: edge}
	p := settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "a,b,d" || p.Desired != 3 || !p.Complete {
		t.Fatalf("initial: on %s, desired %d, complete %v (%s)", got, p.Desired, p.Complete, p.Progressing.Message)
	}
	in.Assignments = p.Assignments

	// A node joins with the label.
	in.Nodes = append(in.Nodes, NodeInfo{Name: "e", Healthy: true, Labels: edge})
	p = settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "a,b,d,e" || p.Desired != 4 {
		t.Fatalf("after e joined: on %s, desired %d", got, p.Desired)
	}
	in.Assignments = p.Assignments

	// b is lost: its replica goes and is not placed elsewhere.
	in.Nodes[1] = NodeInfo{Name: "b", Labels: edge}
	p = settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "a,d,e" || p.Desired != 3 || !p.Complete {
		t.Fatalf("after b lost: on %s, desired %d, %s", got, p.Desired, p.Progressing.Message)
	}
	in.Assignments = p.Assignments

	// b is back: it gets its replica again.
	in.Nodes[1] = NodeInfo{Name: "b", Healthy: true, Labels: edge}
	p = settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "a,b,d,e" {
		t.Fatalf("after b back: on %s", got)
	}
	in.Assignments = p.Assignments

	// d drains: its replica is removed; a cordoned e keeps its replica.
	in.Nodes[3].Drain = true
	in.Nodes[4].Unschedulable = true
	p = settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "a,b,e" || p.Desired != 3 || !p.Complete {
		t.Fatalf("after d drained and e cordoned: on %s, desired %d, %s", got, p.Desired, p.Progressing.Message)
	}
	in.Assignments = p.Assignments

	// a loses the label: its replica goes.
	in.Nodes[0].Labels = nil
	p = settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "b,e" {
		t.Fatalf("after a lost its label: on %s", got)
	}
	in.Assignments = p.Assignments

	// A new spec rolls node by node (stop-first), never two on a node.
	in.SpecHash = "h2"
	p = settle(t, in, true)
	for _, a := range p.Assignments {
		if a.SpecHash != "h2" {
			t.Fatalf("not rolled: %+v", p.Assignments)
		}
	}
	if got := nodeSet(p.Assignments); got != "b,e" || !p.Complete {
		t.Fatalf("after the update (e is cordoned: a global Service ignores cordons, as a DaemonSet): on %s, %s", got, p.Progressing.Message)
	}
}

// TestHostPortsOnePerNode: replicas needing one host port never share a node, with each other
// or with another Service's, and the status says which port is taken where.
func TestHostPortsOnePerNode(t *testing.T) {
	in := Input{Desired: 3, SpecHash: "h1", MaxUnavailable: 1, Nodes: nodes("a", "b"), HostPorts: []string{"53/udp"}}
	p := settle(t, in, true)
	if p.Unplaced != 1 || p.Progressing.Reason != v1.ReasonUnschedulable ||
		!strings.Contains(p.Progressing.Message, "host ports 53/udp are taken on every eligible node") ||
		!strings.Contains(p.Progressing.Message, "a: a replica of this Service holds them") {
		t.Fatalf("3 replicas on 2 nodes: unplaced %d, %s: %s", p.Unplaced, p.Progressing.Reason, p.Progressing.Message)
	}
	if got := nodeSet(p.Assignments); got != "a,b" {
		t.Fatalf("on %s", got)
	}

	// Another Service holds the port on a: only b takes a replica.
	in = Input{Desired: 2, SpecHash: "h1", MaxUnavailable: 1, Nodes: nodes("a", "b", "c"), HostPorts: []string{"53/udp", "80/tcp"},
		PortsTaken: map[string]map[string]string{"a": {"53/udp": "coredns"}, "c": {"80/tcp": "traefik"}}}
	p = settle(t, in, true)
	if got := nodeSet(p.Assignments); got != "b" || p.Unplaced != 1 ||
		!strings.Contains(p.Progressing.Message, "a: coredns holds 53/udp") || !strings.Contains(p.Progressing.Message, "c: traefik holds 80/tcp") {
		t.Fatalf("on %s, unplaced %d: %s", got, p.Unplaced, p.Progressing.Message)
	}
	// Another protocol on the same number does not conflict.
	in.PortsTaken = map[string]map[string]string{"a": {"53/tcp": "coredns"}}
	in.Assignments = nil
	if p = settle(t, in, true); p.Unplaced != 0 {
		t.Fatalf("53/tcp blocked 53/udp: %s", p.Progressing.Message)
	}
}

// TestHoldBackUntilDependencies: while a dependency does not hold, nothing is created and no
// ready replica is removed; once it holds, the Service is placed.
func TestHoldBackUntilDependencies(t *testing.T) {
	in := Input{Desired: 2, SpecHash: "h1", MaxSurge: 1, Nodes: nodes("a", "b"), HoldBack: "services/db is not healthy (0 ready replicas)"}
	p := Compute(in)
	if len(p.Assignments) != 0 || p.Progressing.Reason != v1.ReasonWaitingForDependency ||
		p.Progressing.Message != "2 of 2 replicas wait for spec.dependsOn: services/db is not healthy (0 ready replicas)" {
		t.Fatalf("held: %+v %+v", p.Assignments, p.Progressing)
	}
	in.HoldBack = ""
	p = settle(t, in, false)
	if len(p.Assignments) != 2 || !p.Complete {
		t.Fatalf("released: %+v %s", p.Assignments, p.Progressing.Message)
	}
	// Running replicas are left alone when the dependency fails later; an update waits.
	in.Assignments, in.HoldBack, in.SpecHash = p.Assignments, "services/db is not healthy (0 ready replicas)", "h2"
	in.MaxSurge, in.MaxUnavailable = 0, 1
	in.Observed = readyAll(in.Assignments)
	p = Compute(in)
	if !equalAssignments(p.Assignments, in.Assignments) || p.Progressing.Reason != v1.ReasonWaitingForDependency {
		t.Fatalf("update while held changed %+v -> %+v (%s)", in.Assignments, p.Assignments, p.Progressing.Reason)
	}
	// All current and nothing to create: the hold does not show.
	in.SpecHash = "h1"
	if p = Compute(in); p.Progressing.Reason != v1.ReasonRolloutComplete {
		t.Fatalf("complete Service shows %s", p.Progressing.Reason)
	}
}

func putSvc(t *testing.T, st *store.Memory, name string, mut func(s *v1.Service)) {
	t.Helper()
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ServiceSpec{Image: "echo:1"}}
	mut(s)
	s.Default()
	o, err := st.Create(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.Assignments != nil || s.Status.ReadyReplicas != 0 || s.Status.ReplicaStatuses != nil {
		c := o.(*v1.Service)
		c.Status = s.Status
		if _, err := st.UpdateStatus(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStackInputsFromTheStore: dependency conditions read the dependencies' aggregated status,
// and host ports the other Services' assignments.
func TestStackInputsFromTheStore(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	putSvc(t, st, "db", func(s *v1.Service) {
		s.Status.ReplicaStatuses = []v1.ReplicaStatus{{Index: 0, Node: "a", State: v1.ReplicaRunning, Health: v1.HealthStarting}}
	})
	putSvc(t, st, "cache", func(*v1.Service) {})
	putSvc(t, st, "ext", func(s *v1.Service) {
		s.Spec.Image, s.Spec.Upstreams = "", []v1.Upstream{{URL: "https://db.example.com"}}
		s.Spec.Ports = []v1.ServicePort{{ContainerPort: 443}}
	})
	putSvc(t, st, "coredns", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{ContainerPort: 53, Protocol: v1.ProtocolUDP, HostPort: 53}}
		s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "a"}, {Index: 1, Node: "c"}}
	})
	putSvc(t, st, "web", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{ContainerPort: 8080, HostPort: 53}} // 53/tcp: no conflict
		s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "b"}}
	})
	rd := storeReader{st: st}
	app := &v1.Service{Metadata: v1.ObjectMeta{Name: "app"}, Spec: v1.ServiceSpec{
		Ports:     []v1.ServicePort{{ContainerPort: 5353, Protocol: v1.ProtocolUDP, HostPort: 53}},
		DependsOn: []v1.Dependency{{Service: "db"}, {Service: "ext", Condition: v1.DependencyHealthy}}}}
	var in Input
	if err := stackInputs(ctx, rd, app, &in); err != nil {
		t.Fatal(err)
	}
	if in.HoldBack != "" {
		t.Errorf("db started and ext upstream: held with %q", in.HoldBack)
	}
	if len(in.PortsTaken) != 2 || in.PortsTaken["a"]["53/udp"] != "coredns" || in.PortsTaken["c"]["53/udp"] != "coredns" || in.PortsTaken["b"] != nil {
		t.Errorf("ports taken %v", in.PortsTaken)
	}
	app.Spec.DependsOn = []v1.Dependency{{Service: "db", Condition: v1.DependencyHealthy}, {Service: "cache"}, {Service: "gone"}}
	if err := stackInputs(ctx, rd, app, &in); err != nil {
		t.Fatal(err)
	}
	want := "services/db is not healthy (0 ready replicas); services/cache is not started (no running replica); services/gone does not exist"
	if in.HoldBack != want {
		t.Errorf("hold back %q, want %q", in.HoldBack, want)
	}
}
