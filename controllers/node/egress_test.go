package node

import (
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestPlanNetnsDependents is the table of the plan for a Service sharing a gateway's network
// namespace: fail closed without a usable owner, recreate (never restart) after the owner was
// restarted or recreated, keep what joined the owner's current run.
func TestPlanNetnsDependents(t *testing.T) {
	now := time.Unix(1000, 0)
	ownerStart := now.Add(-time.Minute)
	dep := func(id string, idx int, owner string, started time.Time, running bool) docker.Container {
		c := ctr(id, idx, "h", running, map[bool]string{true: "running", false: "exited"}[running])
		c.Labels[docker.LabelNetnsOwner] = owner
		c.StartedAt = started
		return c
	}
	cases := []struct {
		name     string
		netns    netnsOwner
		cs       []docker.Container
		want     []Action
		wantWait time.Duration
	}{
		{name: "owner usable: create joining it", netns: netnsOwner{ID: "gw1", StartedAt: ownerStart},
			want: []Action{{Kind: ActCreate, Index: 0, SpecHash: "h", NetnsOwner: "gw1"}}},
		{name: "joined the current run: kept", netns: netnsOwner{ID: "gw1", StartedAt: ownerStart},
			cs: []docker.Container{dep("a", 0, "gw1", ownerStart.Add(time.Second), true)}},
		{name: "owner restarted since: removed at once, recreated next pass", netns: netnsOwner{ID: "gw1", StartedAt: ownerStart},
			cs:       []docker.Container{dep("a", 0, "gw1", ownerStart.Add(-time.Second), true)},
			want:     []Action{{Kind: ActRemove, Index: 0, ContainerID: "a", Why: "namespace owner restarted"}},
			wantWait: 100 * time.Millisecond},
		{name: "owner recreated (another ID): removed at once", netns: netnsOwner{ID: "gw2", StartedAt: ownerStart},
			cs:       []docker.Container{dep("a", 0, "gw1", now, true)},
			want:     []Action{{Kind: ActRemove, Index: 0, ContainerID: "a", Why: "namespace owner recreated"}},
			wantWait: 100 * time.Millisecond},
		{name: "an exited dependent of an old run is recreated, not started", netns: netnsOwner{ID: "gw1", StartedAt: ownerStart},
			cs:       []docker.Container{dep("a", 0, "gw1", ownerStart.Add(-time.Hour), false)},
			want:     []Action{{Kind: ActRemove, Index: 0, ContainerID: "a", Why: "namespace owner restarted"}},
			wantWait: 100 * time.Millisecond},
		{name: "no usable owner: fail closed, nothing created", netns: netnsOwner{Why: "egress check of warp not passing: warp=off"}},
		{name: "no usable owner: running dependents removed at once, no drain", netns: netnsOwner{Why: "warp=off"},
			cs:   []docker.Container{dep("a", 0, "gw1", now, true)},
			want: []Action{{Kind: ActRemove, Index: 0, ContainerID: "a", Why: "gateway unhealthy: warp=off"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := c.netns
			out := plan(planInput{Desired: map[int32]string{0: "h"}, Containers: c.cs, Now: now, DrainDelay: 5 * time.Second,
				Backoff: backoff(time.Second, time.Minute), Health: map[string]v1.Health{}, Netns: &n})
			if !reflect.DeepEqual(out.Actions, c.want) {
				t.Errorf("actions %+v, want %+v", out.Actions, c.want)
			}
			if out.Wait != c.wantWait {
				t.Errorf("wait %s, want %s", out.Wait, c.wantWait)
			}
		})
	}
}

// TestEgressProbeSurvivesPasses: a reconcile pass hands ensure a fresh copy of the spec; the
// probe (and its healer's state) must be kept, not restarted.
func TestEgressProbeSurvivesPasses(t *testing.T) {
	m := newEgressMonitor(func(string) {}, clocktesting.NewFakeClock(time.Unix(1000, 0)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer m.stopAll()
	spec := func() *v1.ServiceSpec {
		return &v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "proxy", ContainerPort: 1080}},
			EgressCheck: &v1.EgressCheck{URL: "http://192.0.2.1/", Interval: &v1.Duration{Duration: time.Hour}, Via: "socks5:proxy"}}
	}
	c := docker.Container{ID: "gw", Running: true, StartedAt: time.Unix(1, 0), Networks: map[string]string{"bridge": "192.0.2.9"}}
	m.ensure("warp", 0, c, spec())
	m.mu.Lock()
	first := m.probes["gw"]
	m.mu.Unlock()
	m.ensure("warp", 0, c, spec())
	m.mu.Lock()
	second := m.probes["gw"]
	m.mu.Unlock()
	if first != second {
		t.Fatal("a new spec copy restarted the probe")
	}
	c.StartedAt = time.Unix(2, 0)
	m.ensure("warp", 0, c, spec())
	m.mu.Lock()
	third := m.probes["gw"]
	m.mu.Unlock()
	if third == second {
		t.Fatal("a restarted container kept its old probe")
	}
}
