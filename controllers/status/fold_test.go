package status

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func service(name string, replicas int32) *v1.Service {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = name
	s.Spec.Image = "registry.local/web:1"
	s.Spec.Replicas = &replicas
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9090}}
	return s
}

func rep(idx int32, node, hash string, state v1.ReplicaState, health v1.Health) observed.Replica {
	return observed.Replica{
		Service: "web", Index: idx, Node: node, ContainerID: "c" + node, SpecHash: hash, State: state, Health: health,
		Ports: map[string]string{"8080/tcp": node + ":31000", "9090/tcp": node + ":31001"},
	}
}

func cond(st v1.ServiceStatus, t v1.ConditionType) string {
	c := v1.FindCondition(st.Conditions, t)
	if c == nil {
		return "-"
	}
	return string(c.Status) + "/" + string(c.Reason)
}

func TestFoldService(t *testing.T) {
	running, healthy := v1.ReplicaRunning, v1.HealthHealthy
	cases := []struct {
		name                    string
		desired                 int32
		replicas                []observed.Replica
		wantReplicas, wantReady int32
		wantUpdated             int32
		wantReadyCond, wantDegr string
		wantDegrMsg             string
	}{
		{"nothing yet", 3, nil, 0, 0, 0, "False/ReplicasNotReady", "True/ReplicasNotReady", "0/3 replicas ready, none starting"},
		{"all ready", 2, []observed.Replica{rep(0, "a", "h2", running, healthy), rep(1, "b", "h2", running, v1.HealthNone)},
			2, 2, 2, "True/AllReplicasReady", "False/AllReplicasReady", ""},
		{"starting is not degraded", 2, []observed.Replica{rep(0, "a", "h2", running, healthy), rep(1, "b", "h2", v1.ReplicaPending, "")},
			2, 1, 2, "False/ReplicasNotReady", "False/ReplicasNotReady", "1 replica(s) starting"},
		{"health starting is not degraded", 1, []observed.Replica{rep(0, "a", "h2", running, v1.HealthStarting)},
			1, 0, 1, "False/ReplicasNotReady", "False/ReplicasNotReady", "1 replica(s) starting"},
		{"old replicas are not updated", 2, []observed.Replica{rep(0, "a", "h1", running, healthy), rep(1, "b", "h2", running, healthy)},
			2, 2, 1, "True/AllReplicasReady", "False/AllReplicasReady", ""},
		{"rolling update surge", 2, []observed.Replica{rep(0, "a", "h1", running, healthy), rep(0, "b", "h2", running, v1.HealthStarting), rep(1, "c", "h1", running, healthy)},
			3, 2, 1, "True/AllReplicasReady", "False/AllReplicasReady", ""},
		{"image not found", 2, []observed.Replica{rep(0, "a", "h2", running, healthy), func() observed.Replica {
			r := rep(1, "b", "h2", v1.ReplicaFailed, "")
			r.Reason, r.Message = v1.ReasonImageNotFound, "pull registry.local/web:1: not found"
			return r
		}()}, 2, 1, 2, "False/ReplicasNotReady", "True/ImageNotFound", "web-1 on b: pull registry.local/web:1: not found"},
		{"unhealthy", 1, []observed.Replica{rep(0, "a", "h2", running, v1.HealthUnhealthy)},
			1, 0, 1, "False/ReplicasNotReady", "True/Unhealthy", "web-0 on a"},
		{"crash loop", 1, []observed.Replica{func() observed.Replica {
			r := rep(0, "a", "h2", v1.ReplicaExited, "")
			r.Restarts, r.ExitCode = 4, 1
			return r
		}()}, 1, 0, 1, "False/ReplicasNotReady", "True/CrashLoop", "web-0 on a"},
		{"most frequent reason wins", 3, []observed.Replica{
			func() observed.Replica {
				r := rep(0, "a", "h2", v1.ReplicaFailed, "")
				r.Reason = v1.ReasonPortConflict
				return r
			}(),
			rep(1, "b", "h2", running, v1.HealthUnhealthy),
			rep(2, "c", "h2", running, v1.HealthUnhealthy),
		}, 3, 0, 3, "False/ReplicasNotReady", "True/Unhealthy", "web-1 on b; web-2 on c"},
		{"scaled to zero", 0, nil, 0, 0, 0, "True/ScaledToZero", "False/AllReplicasReady", ""},
		{"other services ignored", 1, []observed.Replica{rep(0, "a", "h2", running, healthy), {Service: "db", Index: 0, Node: "a", State: running}},
			1, 1, 1, "True/AllReplicasReady", "False/AllReplicasReady", ""},
		{"missing after a node death", 3, []observed.Replica{rep(0, "a", "h2", running, healthy), rep(2, "c", "h2", running, healthy)},
			2, 2, 2, "False/ReplicasNotReady", "True/ReplicasNotReady", "2/3 replicas ready, none starting"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := service("web", tc.desired)
			s.Metadata.Generation = 7
			got := FoldService(s, tc.replicas, "h2", t0)
			if got.Replicas != tc.wantReplicas || got.ReadyReplicas != tc.wantReady || got.UpdatedReplicas != tc.wantUpdated {
				t.Errorf("replicas/ready/updated = %d/%d/%d, want %d/%d/%d", got.Replicas, got.ReadyReplicas, got.UpdatedReplicas, tc.wantReplicas, tc.wantReady, tc.wantUpdated)
			}
			if c := cond(got, v1.ServiceReady); c != tc.wantReadyCond {
				t.Errorf("Ready = %s, want %s", c, tc.wantReadyCond)
			}
			if c := cond(got, v1.ServiceDegraded); c != tc.wantDegr {
				t.Errorf("Degraded = %s, want %s", c, tc.wantDegr)
			}
			if d := v1.FindCondition(got.Conditions, v1.ServiceDegraded); d != nil && d.Message != tc.wantDegrMsg {
				t.Errorf("Degraded message %q, want %q", d.Message, tc.wantDegrMsg)
			}
			if got.ObservedGeneration != 7 {
				t.Errorf("observedGeneration %d", got.ObservedGeneration)
			}
			if len(got.ReplicaStatuses) != int(tc.wantReplicas) {
				t.Errorf("%d replica statuses", len(got.ReplicaStatuses))
			}
		})
	}
}

func TestFoldServiceReplicaStatuses(t *testing.T) {
	s := service("web", 3)
	r2 := rep(2, "a", "h2", v1.ReplicaRunning, v1.HealthHealthy)
	r0b := rep(0, "b", "h2", v1.ReplicaRunning, v1.HealthHealthy)
	r0a := rep(0, "a", "h1", v1.ReplicaRunning, v1.HealthHealthy)
	r0a.Ports = map[string]string{"9090/tcp": "a:1", "7000/udp": "a:2"} // first declared port not published
	failed := rep(1, "c", "h2", v1.ReplicaFailed, "")
	failed.Reason = v1.ReasonVolumeNotFound
	got := FoldService(s, []observed.Replica{r2, r0b, failed, r0a}, "h2", t0).ReplicaStatuses
	want := []v1.ReplicaStatus{
		{Index: 0, Node: "a", ContainerID: "ca", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "a:2", SpecHash: "h1"},
		{Index: 0, Node: "b", ContainerID: "cb", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "b:31000", SpecHash: "h2"},
		{Index: 1, Node: "c", ContainerID: "cc", State: v1.ReplicaFailed, Address: "c:31000", SpecHash: "h2", Message: string(v1.ReasonVolumeNotFound)},
		{Index: 2, Node: "a", ContainerID: "ca", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "a:31000", SpecHash: "h2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses", len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestFoldServiceKeepsSchedulerFieldsAndTransitionTimes(t *testing.T) {
	s := service("web", 1)
	s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h2"}}
	s.Status.CurrentRevision = &v1.ServiceRevision{SpecHash: "h2"}
	s.Status.Conditions = []v1.Condition{
		{Type: v1.ServiceProgressing, Status: v1.ConditionTrue, Reason: v1.ReasonRollingUpdate, LastTransitionTime: t0.Add(-time.Hour)},
		{Type: v1.ServiceReady, Status: v1.ConditionTrue, Reason: v1.ReasonAllReplicasReady, Message: "old message", LastTransitionTime: t0.Add(-time.Minute)},
	}
	before := s.DeepCopyObject().(*v1.Service)
	got := FoldService(s, []observed.Replica{rep(0, "a", "h2", v1.ReplicaRunning, v1.HealthHealthy)}, "h2", t0)
	if len(got.Assignments) != 1 || got.CurrentRevision == nil || got.CurrentRevision.SpecHash != "h2" {
		t.Fatalf("scheduler fields changed: %+v", got)
	}
	if p := v1.FindCondition(got.Conditions, v1.ServiceProgressing); p == nil || p.Reason != v1.ReasonRollingUpdate || !p.LastTransitionTime.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("Progressing changed: %+v", p)
	}
	if r := v1.FindCondition(got.Conditions, v1.ServiceReady); !r.LastTransitionTime.Equal(t0.Add(-time.Minute)) || r.Message != "1/1 replicas ready" {
		t.Fatalf("Ready = %+v: the status did not change, its transition time must not", r)
	}
	if d := v1.FindCondition(got.Conditions, v1.ServiceDegraded); !d.LastTransitionTime.Equal(t0) {
		t.Fatalf("new Degraded condition time %v", d.LastTransitionTime)
	}
	got2 := FoldService(s, nil, "h2", t0.Add(time.Second))
	if r := v1.FindCondition(got2.Conditions, v1.ServiceReady); r.Status != v1.ConditionFalse || !r.LastTransitionTime.Equal(t0.Add(time.Second)) {
		t.Fatalf("Ready after losing the replica = %+v", r)
	}
	if !strings.Contains(v1.FindCondition(s.Status.Conditions, v1.ServiceReady).Message, "old") || len(s.Status.Conditions) != len(before.Status.Conditions) {
		t.Fatal("FoldService modified its input")
	}
}

func TestFoldNode(t *testing.T) {
	leader := v1.RaftLeader
	seen := t0.Add(-10 * time.Second)
	old := t0.Add(-2 * time.Minute)
	recent := t0.Add(-500 * time.Millisecond)
	alive := &observed.Node{Name: "a", Advertise: "10.0.0.1", API: "10.0.0.1:7480", Raft: "10.0.0.1:7481", Gossip: "10.0.0.1:7482", Version: "v1.2", Alive: true, State: "alive"}
	dead := &observed.Node{Name: "a", Advertise: "10.0.0.1", Alive: false, State: "dead", LastChange: t0.Add(-time.Second)}
	left := &observed.Node{Name: "a", Alive: false, State: "left", LastChange: t0.Add(-3 * time.Second)}
	cases := []struct {
		name         string
		lastSeen     *time.Time
		obs          *observed.Node
		role         *v1.RaftRole
		wantReady    string
		wantState    string
		wantLastSeen *time.Time
		wantRole     v1.RaftRole
	}{
		{"alive, first time", nil, alive, &leader, "True/GossipAlive", "alive", &t0, v1.RaftLeader},
		{"alive, lastSeen fresh enough", &seen, alive, nil, "True/GossipAlive", "alive", &seen, v1.RaftFollower},
		{"alive, lastSeen stale", &old, alive, nil, "True/GossipAlive", "alive", &t0, v1.RaftFollower},
		{"dead", &old, dead, nil, "False/NodeDead", "dead", ptr(t0.Add(-time.Second)), v1.RaftFollower},
		{"dead, lastSeen already later", &recent, dead, nil, "False/NodeDead", "dead", &recent, v1.RaftFollower},
		{"left", &old, left, nil, "False/NodeLeft", "left", ptr(t0.Add(-3 * time.Second)), v1.RaftFollower},
		{"unknown to gossip", &old, nil, nil, "Unknown/NodeStatusUnknown", "unknown", &old, v1.RaftFollower},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}}
			n.Metadata.Name, n.Metadata.Generation = "a", 3
			n.Status.LastSeen = tc.lastSeen
			n.Status.RaftRole = v1.RaftFollower
			got := FoldNode(n, tc.obs, tc.role, t0, time.Minute)
			c := v1.FindCondition(got.Conditions, v1.NodeReady)
			if c == nil || string(c.Status)+"/"+string(c.Reason) != tc.wantReady {
				t.Fatalf("Ready = %+v, want %s", c, tc.wantReady)
			}
			if got.GossipState != tc.wantState || got.RaftRole != tc.wantRole || got.ObservedGeneration != 3 {
				t.Fatalf("status = %+v", got)
			}
			if (got.LastSeen == nil) != (tc.wantLastSeen == nil) || (got.LastSeen != nil && !got.LastSeen.Equal(*tc.wantLastSeen)) {
				t.Fatalf("lastSeen = %v, want %v", got.LastSeen, tc.wantLastSeen)
			}
			if tc.obs == alive && (got.Addresses != v1.NodeAddresses{Advertise: "10.0.0.1", API: "10.0.0.1:7480", Raft: "10.0.0.1:7481", Gossip: "10.0.0.1:7482"} || got.AgentVersion != "v1.2") {
				t.Fatalf("addresses/version = %+v %q", got.Addresses, got.AgentVersion)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// A replica waiting for its lost node (the scheduler's assignment carries since when) has no
// container anywhere: it shows as WaitingForNode with its node and since when, and Degraded says
// so. Once a node reports it again, the observed replica is what shows.
func TestFoldServiceWaitingForNode(t *testing.T) {
	s := service("pg", 2)
	since := t0.Add(-time.Hour)
	s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h"}, {Index: 1, Node: "b", SpecHash: "h", WaitingSince: &since}}
	r0 := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthHealthy)
	r0.Service = "pg"
	st := FoldService(s, []observed.Replica{r0}, "h", t0)
	if len(st.ReplicaStatuses) != 2 {
		t.Fatalf("replica statuses %+v, want 2", st.ReplicaStatuses)
	}
	w := st.ReplicaStatuses[1]
	if w.Index != 1 || w.Node != "b" || w.State != v1.ReplicaWaitingForNode || !strings.Contains(w.Message, "lost since "+since.Format(time.RFC3339)) {
		t.Errorf("waiting replica %+v", w)
	}
	if got := cond(st, v1.ServiceDegraded); got != "True/"+string(v1.ReasonWaitingForNode) {
		t.Errorf("Degraded %s, want True/%s", got, v1.ReasonWaitingForNode)
	}
	if d := v1.FindCondition(st.Conditions, v1.ServiceDegraded); !strings.Contains(d.Message, "pg-1 on b since") {
		t.Errorf("Degraded message %q does not name the replica and node", d.Message)
	}
	if st.Replicas != 1 || st.ReadyReplicas != 1 {
		t.Errorf("replicas %d ready %d: a waiting replica runs nowhere", st.Replicas, st.ReadyReplicas)
	}

	// b is back and reports the replica: it shows as observed, nothing waits.
	r1 := rep(1, "b", "h", v1.ReplicaRunning, v1.HealthHealthy)
	r1.Service = "pg"
	st = FoldService(s, []observed.Replica{r0, r1}, "h", t0)
	if len(st.ReplicaStatuses) != 2 || st.ReplicaStatuses[1].State != v1.ReplicaRunning {
		t.Errorf("after return: %+v", st.ReplicaStatuses)
	}
	if got := cond(st, v1.ServiceDegraded); got != "False/"+string(v1.ReasonAllReplicasReady) {
		t.Errorf("after return: Degraded %s", got)
	}
}
