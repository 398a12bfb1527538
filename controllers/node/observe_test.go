package node

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func TestObserve(t *testing.T) {
	now := time.Unix(1000, 0)
	ports := []v1.ServicePort{{ContainerPort: 8080}}
	withPort := func(c docker.Container) docker.Container {
		c.Ports = map[string]docker.HostPort{"8080/tcp": {Port: "32001"}}
		return c
	}
	rep := func(idx int32, id, hash string, state v1.ReplicaState, h v1.Health) observed.Replica {
		return observed.Replica{Service: "web", Index: idx, Node: "n", ContainerID: id, SpecHash: hash, State: state, Health: h, UpdatedAt: now}
	}
	cases := []struct {
		name        string
		in          observeInput
		want        []observed.Replica
		wantPulling bool
	}{
		{name: "running healthy with its port", in: observeInput{Ports: ports, Desired: map[int32]string{0: "h"},
			Containers: []docker.Container{withPort(ctr("a", 0, "h", true, "running"))}, Health: map[string]v1.Health{"a": v1.HealthHealthy}},
			want: []observed.Replica{func() observed.Replica {
				r := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthHealthy)
				r.Ports = map[string]string{"8080/tcp": "10.0.0.1:32001"}
				return r
			}()}},
		{name: "no health yet is starting", in: observeInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}},
			want: []observed.Replica{rep(0, "a", "h", v1.ReplicaRunning, v1.HealthStarting)}},
		{name: "desired container preferred over an old one of the same index", in: observeInput{Desired: map[int32]string{0: "new"},
			Containers: []docker.Container{ctr("old", 0, "old", true, "running"), ctr("n", 0, "new", false, "created")}, Health: map[string]v1.Health{"old": v1.HealthHealthy, "n": v1.HealthNone}},
			want: []observed.Replica{rep(0, "n", "new", v1.ReplicaCreated, v1.HealthNone)}},
		{name: "not desired and running is terminating", in: observeInput{Desired: map[int32]string{},
			Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthHealthy}},
			want: []observed.Replica{rep(0, "a", "h", v1.ReplicaTerminating, v1.HealthHealthy)}},
		{name: "not desired and stopped is not shown", in: observeInput{Desired: map[int32]string{}, Containers: []docker.Container{ctr("a", 0, "h", false, "exited")}}},
		{name: "crash loop is failed with the last exit code", in: observeInput{Desired: map[int32]string{0: "h"},
			Containers: []docker.Container{ctr("a", 0, "h", false, "exited")}, Health: map[string]v1.Health{"a": v1.HealthNone},
			States: map[int32]*replicaState{0: {failures: 5, reason: v1.ReasonCrashLoop, message: "exit code 3", exitCode: 3}}},
			want: []observed.Replica{func() observed.Replica {
				r := rep(0, "a", "h", v1.ReplicaFailed, v1.HealthNone)
				r.ExitCode, r.Restarts, r.Reason, r.Message = 3, 5, v1.ReasonCrashLoop, "exit code 3"
				return r
			}()}},
		{name: "ready again shows no stale failure, keeps restarts", in: observeInput{Desired: map[int32]string{0: "h"},
			Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthHealthy},
			States: map[int32]*replicaState{0: {failures: 2, reason: "Exited", message: "exit code 1"}}},
			want: []observed.Replica{func() observed.Replica {
				r := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthHealthy)
				r.Restarts = 2
				return r
			}()}},
		{name: "unhealthy carries the probe message", in: observeInput{Desired: map[int32]string{0: "h"},
			Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthUnhealthy},
			ProbeMessage: map[string]string{"a": "HTTP 500"}},
			want: []observed.Replica{func() observed.Replica {
				r := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthUnhealthy)
				r.Reason, r.Message = v1.ReasonUnhealthy, "HTTP 500"
				return r
			}()}},
		{name: "blind and not ready says the engine does not answer", in: observeInput{Blind: true, Desired: map[int32]string{0: "h"},
			Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthUnknown}},
			want: []observed.Replica{func() observed.Replica {
				r := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthUnknown)
				r.Reason, r.Message = v1.ReasonEngineUnavailable, "the Docker engine does not answer: shown as last seen, health unknown"
				return r
			}()}},
		{name: "egress failed makes it unhealthy", in: observeInput{Desired: map[int32]string{0: "h"},
			Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthHealthy},
			Egress: map[string]gatewayState{"a": {checked: true, failed: true, summary: "dns"}}},
			want: []observed.Replica{func() observed.Replica {
				r := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthUnhealthy)
				r.Reason, r.Message = v1.ReasonEgressFailed, "egress check failing after every healing step: dns"
				return r
			}()}},
		{name: "missing replicas: pending, pulling, failed", in: observeInput{Desired: map[int32]string{0: "h", 1: "h", 2: "h"},
			States: map[int32]*replicaState{1: {pulling: "pulling image x for 3s", failures: 1}, 2: {reason: v1.ReasonImageNotFound, message: "no such image", failures: 2}}},
			wantPulling: true,
			want: []observed.Replica{
				{Service: "web", Index: 0, Node: "n", SpecHash: "h", State: v1.ReplicaPending, Health: v1.HealthNone, UpdatedAt: now},
				{Service: "web", Index: 1, Node: "n", SpecHash: "h", State: v1.ReplicaPending, Health: v1.HealthNone, UpdatedAt: now, Reason: v1.ReasonImagePulling, Message: "pulling image x for 3s", Restarts: 1},
				{Service: "web", Index: 2, Node: "n", SpecHash: "h", State: v1.ReplicaFailed, Health: v1.HealthNone, UpdatedAt: now, Reason: v1.ReasonImageNotFound, Message: "no such image", Restarts: 2},
			}},
		{name: "gated fails closed", in: observeInput{Desired: map[int32]string{0: "h"}, Gated: "gateway down"},
			want: []observed.Replica{{Service: "web", Index: 0, Node: "n", SpecHash: "h", State: v1.ReplicaPending, Health: v1.HealthNone, UpdatedAt: now, Reason: v1.ReasonGatewayUnhealthy, Message: "gateway down"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Service, tc.in.Node, tc.in.Advertise, tc.in.Now = "web", "n", "10.0.0.1", now
			got, pulling := observe(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("observe:\n got %+v\nwant %+v", got, tc.want)
			}
			if pulling != tc.wantPulling {
				t.Errorf("pulling = %v, want %v", pulling, tc.wantPulling)
			}
		})
	}
}

// TestPublishOutsideTheLock: Config.Publish is called with the reconciler's mutex released, so
// a Publish that reads the reconciler back (the agent's debug endpoints do) cannot deadlock.
func TestPublishOutsideTheLock(t *testing.T) {
	var f *fixture
	calls := 0
	f = newFixtureWith(t, func(c *Config) {
		c.Publish = func(rs []observed.Replica) {
			calls++
			if !f.rec.mu.TryLock() {
				t.Error("Publish called with Reconciler.mu held")
				return
			}
			f.rec.mu.Unlock()
			f.published = rs
		}
	})
	f.service(1, "app:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if calls == 0 || len(f.published) != 1 {
		t.Fatalf("Publish calls %d, published %v: want a call with 1 replica", calls, f.published)
	}
}
