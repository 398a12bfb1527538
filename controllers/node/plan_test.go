package node

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
)

func ctr(id string, idx int, hash string, running bool, state string) docker.Container {
	return docker.Container{ID: id, Running: running, State: state, Labels: map[string]string{
		docker.LabelService: "web", docker.LabelReplica: strconv.Itoa(idx), docker.LabelSpecHash: hash, docker.LabelNode: "n"}}
}

func TestPlan(t *testing.T) {
	now := time.Unix(1000, 0)
	bo := backoff(time.Second, time.Minute)
	cases := []struct {
		name     string
		in       planInput
		want     []Action
		wantWait time.Duration
	}{
		{name: "create missing", in: planInput{Desired: map[int32]string{0: "h", 1: "h"}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}},
			want: []Action{{Kind: ActCreate, Index: 1, SpecHash: "h"}}},
		{name: "healthy stays", in: planInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthHealthy}}},
		{name: "exited restarts after backoff", in: planInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{ctr("a", 0, "h", false, "exited")},
			States: map[int32]*replicaState{0: {failures: 1, lastFailure: now.Add(-2 * time.Second)}}},
			want: []Action{{Kind: ActStart, Index: 0, ContainerID: "a"}}},
		{name: "exited waits for backoff", in: planInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{ctr("a", 0, "h", false, "exited")},
			States: map[int32]*replicaState{0: {failures: 3, lastFailure: now.Add(-time.Second)}}},
			wantWait: 3 * time.Second},
		{name: "create waits for backoff", in: planInput{Desired: map[int32]string{0: "h"},
			States: map[int32]*replicaState{0: {failures: 2, lastFailure: now}}},
			wantWait: 2 * time.Second},
		{name: "unhealthy restarts", in: planInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, Health: map[string]v1.Health{"a": v1.HealthUnhealthy}},
			want: []Action{{Kind: ActRestart, Index: 0, ContainerID: "a"}}},
		{name: "stray running drains first", in: planInput{Desired: map[int32]string{}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, DrainDelay: 2 * time.Second},
			want: []Action{{Kind: ActDrain, Index: 0, ContainerID: "a"}}, wantWait: 2 * time.Second},
		{name: "drain not over", in: planInput{Desired: map[int32]string{}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, DrainDelay: 2 * time.Second,
			Draining: map[string]time.Time{"a": now.Add(-time.Second)}}, wantWait: time.Second},
		{name: "drain over", in: planInput{Desired: map[int32]string{}, Containers: []docker.Container{ctr("a", 0, "h", true, "running")}, DrainDelay: 2 * time.Second,
			Draining: map[string]time.Time{"a": now.Add(-3 * time.Second)}},
			want: []Action{{Kind: ActRemove, Index: 0, ContainerID: "a"}}},
		{name: "stray stopped goes at once", in: planInput{Desired: map[int32]string{}, Containers: []docker.Container{ctr("a", 3, "h", false, "exited")}, DrainDelay: 2 * time.Second},
			want: []Action{{Kind: ActRemove, Index: 3, ContainerID: "a"}}},
		{name: "new hash replaces in place", in: planInput{Desired: map[int32]string{0: "h2"}, Containers: []docker.Container{ctr("a", 0, "h1", false, "exited")}},
			want: []Action{{Kind: ActCreate, Index: 0, SpecHash: "h2"}, {Kind: ActRemove, Index: 0, ContainerID: "a"}}},
		{name: "duplicate removed", in: planInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{ctr("a", 0, "h", false, "exited"), ctr("b", 0, "h", true, "running")}},
			want: []Action{{Kind: ActRemove, Index: 0, ContainerID: "a"}}},
		{name: "bad replica label is stray", in: planInput{Desired: map[int32]string{0: "h"}, Containers: []docker.Container{
			{ID: "x", Labels: map[string]string{docker.LabelReplica: "zero", docker.LabelSpecHash: "h"}}, ctr("a", 0, "h", true, "running")}},
			want: []Action{{Kind: ActRemove, Index: 0, ContainerID: "x"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Now, c.in.Backoff = now, bo
			got := plan(c.in)
			if !reflect.DeepEqual(got.Actions, c.want) {
				t.Errorf("actions %+v, want %+v", got.Actions, c.want)
			}
			if got.Wait != c.wantWait {
				t.Errorf("wait %s, want %s", got.Wait, c.wantWait)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	bo := backoff(time.Second, 10*time.Second)
	for f, want := range map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		if got := bo(f); got != want {
			t.Errorf("backoff(%d) = %s, want %s", f, got, want)
		}
	}
}
