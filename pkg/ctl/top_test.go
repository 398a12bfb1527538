package ctl_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// topImage is the tool image under its own tag (hack/build-test-images.sh): it has "burn".
const topImage = "constellation-test/tool:top"

// startTop runs replica index on node from topImage, labelled as the node reconciler labels
// it, and reports it in the Service's status (as nodes.start does for toolImage).
func startTop(n *nodes, node string, index int32, cmd ...string) {
	n.t.Helper()
	id, err := n.dc.Create(n.ctx, docker.CreateConfig{
		Name: fmt.Sprintf("%s-%s-%d", node, n.svc, index),
		Config: &container.Config{Image: topImage, Cmd: cmd, Labels: map[string]string{
			docker.LabelService: n.svc, docker.LabelReplica: fmt.Sprint(index), docker.LabelNode: node, docker.LabelSpecHash: "test",
		}},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.dc.Start(n.ctx, id); err != nil {
		n.t.Fatal(err)
	}
	n.report(v1.ReplicaStatus{Index: index, Node: node, ContainerID: id, State: v1.ReplicaRunning})
}

// TestCtlTop runs ctl top against two simulated nodes on the real engine (node_test.go): a
// replica that keeps a CPU busy with 48 MiB resident on a, an idle one on b. Per node: a's
// CPU and memory stand out, each node counts its one replica; per replica: both, named
// svc-i with their node. A third node whose agent is down is named on stderr and the exit
// status is 1, while the nodes that answered are still printed.
func TestCtlTop(t *testing.T) {
	n := newNodes(t)
	startTop(n, n.a, 0, "burn", "48")
	n.start(n.b, 1, []string{"INTERVAL=1s"}, "serve")

	type nodeRow struct {
		Node          string  `json:"node"`
		CPUPercent    float64 `json:"cpuPercent"`
		MemoryBytes   uint64  `json:"memoryBytes"`
		MemoryPercent float64 `json:"memoryPercent"`
		Replicas      int     `json:"replicas"`
	}
	var rows []nodeRow
	waitFor(t, "the burner's memory resident", func() bool {
		r := n.ctl(readToken, "", "top", "nodes", "-o", "json")
		if r.code != 0 {
			t.Fatalf("top nodes -o json: %+v", r)
		}
		rows = nil
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("json: %v\n%s", err, r.stdout)
		}
		return len(rows) == 2 && rows[0].MemoryBytes >= 44<<20
	})
	a, b := rows[0], rows[1]
	if a.Node != n.a || b.Node != n.b || a.Replicas != 1 || b.Replicas != 1 {
		t.Fatalf("rows %+v", rows)
	}
	if a.CPUPercent <= b.CPUPercent || a.CPUPercent <= 0 || a.MemoryPercent <= 0 || a.MemoryPercent > 100 {
		t.Fatalf("node a (the burner's) %+v, node b %+v", a, b)
	}

	// The table: a header, one line per node, sorted.
	r := n.ctl(readToken, "", "top")
	t.Logf("ctl top:\n%s", r.stdout)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NODE CPU% MEMORY MEMORY% REPLICAS" ||
		!strings.HasPrefix(lines[1], n.a+" ") || !strings.HasPrefix(lines[2], n.b+" ") || !strings.HasSuffix(lines[1], " 1") {
		t.Fatalf("ctl top: %+v", r)
	}
	if f := strings.Fields(lines[1]); !regexp.MustCompile(`^[0-9]+\.[0-9]%$`).MatchString(f[1]) || !strings.HasSuffix(f[2], "MiB") {
		t.Fatalf("node a's row %q", lines[1])
	}

	r = n.ctl(readToken, "", "top", "svc", n.svc)
	t.Logf("ctl top svc:\n%s", r.stdout)
	lines = strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "REPLICA NODE CPU% MEMORY MEM LIMIT" {
		t.Fatalf("top svc: %+v", r)
	}
	f0, f1 := strings.Fields(lines[1]), strings.Fields(lines[2])
	if f0[0] != n.svc+"-0" || f0[1] != n.a || f1[0] != n.svc+"-1" || f1[1] != n.b {
		t.Fatalf("top svc rows:\n%s", r.stdout)
	}
	// No absolute figure (the burner's share depends on the machine's load): it stands out.
	cpu0, _ := strconv.ParseFloat(strings.TrimSuffix(f0[2], "%"), 64)
	cpu1, _ := strconv.ParseFloat(strings.TrimSuffix(f1[2], "%"), 64)
	if cpu0 <= cpu1 || cpu0 <= 0 {
		t.Fatalf("the burner at %s CPU, the idle replica at %s:\n%s", f0[2], f1[2], r.stdout)
	}
	if r := n.ctl(readToken, "", "top", "svc", "nope"); r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Fatalf("top svc of a Service that does not exist: %+v", r)
	}
	if r := n.ctl(readToken, "", "top", "-o", "yaml"); r.code != 1 || !strings.Contains(r.stderr, `-o "yaml"`) {
		t.Fatalf("-o yaml: %+v", r)
	}

	// A node whose agent is down: named, the others printed, exit 1.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	gone := n.a + "-gone"
	n.mu.Lock()
	n.urls[gone] = dead.URL
	n.mu.Unlock()
	nd := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: gone}}
	if _, err := n.st.Create(n.ctx, nd); err != nil {
		t.Fatal(err)
	}
	r = n.ctl(readToken, "", "top", "nodes")
	if r.code != 1 || !strings.Contains(r.stderr, "node "+gone+": ") || !strings.Contains(r.stderr, "no stats from 1 node(s): "+gone) ||
		!strings.Contains(r.stdout, n.a+" ") || !strings.Contains(r.stdout, n.b+" ") || strings.Contains(r.stdout, gone) {
		t.Fatalf("a node down, top nodes: %+v", r)
	}
	r = n.ctl(readToken, "", "top", "svc")
	if r.code != 1 || !strings.Contains(r.stderr, "node "+gone+": ") || !strings.Contains(r.stdout, n.svc+"-1") {
		t.Fatalf("a node down, top svc: %+v", r)
	}
}
