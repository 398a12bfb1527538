package nodelocal_test

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// topImage is the tool image under its own tag (hack/build-test-images.sh): it has "burn".
const topImage = "constellation-test/tool:top"

// startLabelled runs a tool container on the engine with labels and an optional memory limit.
func (e *env) startLabelled(labels map[string]string, memLimit int64, cmd ...string) string {
	e.t.Helper()
	id, err := e.dc.Create(e.ctx, docker.CreateConfig{
		Name:       fmt.Sprintf("%s%d", e.prefix, time.Now().UnixNano()%1_000_000_000),
		Config:     &container.Config{Image: topImage, Cmd: cmd, Labels: labels},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: memLimit}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.dc.Start(e.ctx, id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestStatsOfAnotherNode asks node a for node b's stats against the real engine: a replica
// that keeps one CPU busy and 64 MiB resident under a 256 MiB limit, and an idle replica of
// another Service, are sampled as docker stats samples them; a container without the
// Service label, and an exited replica, are not listed; ?service= narrows; the read scope is
// enough and no token is refused.
func TestStatsOfAnotherNode(t *testing.T) {
	e := newEnv(t)
	idle := e.svc + "-idle"
	replica := func(svc string, i int) map[string]string {
		return map[string]string{docker.LabelService: svc, docker.LabelReplica: fmt.Sprint(i), docker.LabelNode: e.b, docker.LabelSpecHash: "test"}
	}
	burner := e.startLabelled(replica(e.svc, 0), 256<<20, "burn", "64")
	e.startLabelled(replica(idle, 3), 0, "serve")
	e.startLabelled(map[string]string{docker.LabelNode: e.b}, 0, "serve") // not the agent's
	e.startLabelled(replica(e.svc, 1), 0, "say", "bye")                   // exits at once
	// A second container of replica 0 on b (an update in progress): both are sampled. The
	// containers of node a never are.
	e.startLabelled(replica(e.svc, 0), 0, "serve")
	e.run(e.a, 5, nil, "serve")

	rc := e.client(readTok)
	var st *nodeapi.NodeStats
	// The burner needs a moment to write its 64 MiB; the exited one a moment to exit.
	eventually(t, "the burner's memory resident and the short-lived replica gone", func() bool {
		var err error
		st, err = rc.Stats(e.ctx, e.b, "")
		if err != nil {
			t.Fatalf("stats of %s through %s: %v", e.b, e.a, err)
		}
		for _, r := range st.Replicas {
			if r.Index == 1 {
				return false
			}
		}
		for _, r := range st.Replicas {
			if strings.HasPrefix(burner, r.Container) && r.MemoryBytes >= 60<<20 {
				return true
			}
		}
		return false
	})
	if st.Node != e.b || st.CPUs < 1 || st.MemoryBytes <= 0 {
		t.Fatalf("node fields: %+v", st)
	}
	if len(st.Replicas) != 3 {
		t.Fatalf("replicas listed: %+v (want the burner, the second replica 0 and the idle one)", st.Replicas)
	}
	var sumMem uint64
	var sumCPU, burnerCPU, idleCPU float64
	for _, r := range st.Replicas {
		if r.Error != "" {
			t.Fatalf("replica %+v: %s", r, r.Error)
		}
		sumMem += r.MemoryBytes
		sumCPU += r.CPUPercent
		if r.Service == idle && r.Index != 3 {
			t.Errorf("idle replica: %+v", r)
		}
		if strings.HasPrefix(burner, r.Container) {
			t.Logf("burner: %.1f%% CPU, %d MiB of %d MiB", r.CPUPercent, r.MemoryBytes>>20, r.MemoryLimitBytes>>20)
			burnerCPU = r.CPUPercent
			if r.MemoryLimitBytes != 256<<20 {
				t.Errorf("burner limit %d, want 256 MiB", r.MemoryLimitBytes)
			}
			if r.MemoryBytes < 60<<20 || r.MemoryBytes > 256<<20 {
				t.Errorf("burner memory %d, want about 64 MiB", r.MemoryBytes)
			}
			continue
		}
		idleCPU = max(idleCPU, r.CPUPercent)
		// No limit: the engine reports the host's memory.
		if r.MemoryLimitBytes != uint64(st.MemoryBytes) {
			t.Errorf("%s-%d: limit %d, want the host's %d", r.Service, r.Index, r.MemoryLimitBytes, st.MemoryBytes)
		}
	}
	// How much CPU the burner gets depends on what else the machine runs, so no absolute
	// figure: it must stand out from the idle ones, and stay within the node's CPUs.
	if burnerCPU < 0.5 || burnerCPU < 10*idleCPU || burnerCPU > float64(100*st.CPUs)+5 {
		t.Errorf("burner at %.2f%% CPU, idle replicas up to %.2f%%: want the burner above 0.5%%, 10 times the idle ones and at most %d%%", burnerCPU, idleCPU, 100*st.CPUs)
	}
	if st.ReplicasMemoryBytes != sumMem || math.Abs(st.ReplicasCPUPercent-sumCPU) > 1e-9 {
		t.Errorf("totals %d B %.2f%%, replicas sum to %d B %.2f%%", st.ReplicasMemoryBytes, st.ReplicasCPUPercent, sumMem, sumCPU)
	}

	only, err := rc.Stats(e.ctx, e.b, idle)
	if err != nil || len(only.Replicas) != 1 || only.Replicas[0].Service != idle {
		t.Fatalf("?service=%s: %+v, %v", idle, only, err)
	}
	onA, err := rc.Stats(e.ctx, e.a, "")
	if err != nil || len(onA.Replicas) != 1 || onA.Replicas[0].Index != 5 || onA.Node != e.a {
		t.Fatalf("node a: %+v, %v", onA, err)
	}

	anon := e.client("")
	if _, err := anon.Stats(e.ctx, e.b, ""); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("no token: %v, want 401", err)
	}
	if _, err := rc.Stats(e.ctx, e.prefix+"gone", ""); client.StatusCode(err) != http.StatusBadGateway || !strings.Contains(err.Error(), e.prefix+"gone") {
		t.Fatalf("unknown node: %v, want 502 naming it", err)
	}
}
