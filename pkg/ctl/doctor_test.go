package ctl_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// fakeDoctor answers the diagnostics route of three nodes as agents would: n1 and n2 healthy
// (n2's clock skew is set by the test), n3 unreachable (as the forwarding agent answers), and a
// gossip view holding n4, a node without a Node object yet.
func fakeDoctor(skew time.Duration, n2Checks []nodeapi.Check) func(*apiserver.Config) {
	raft := func(role string) *nodeapi.RaftInfo {
		return &nodeapi.RaftInfo{Role: role, Leader: "n1", Voters: []string{"n1", "n2", "n3"}}
	}
	ok := []nodeapi.Check{{Name: "docker", Status: nodeapi.StatusOK, Message: "engine answers, API 1.41"}}
	return func(cfg *apiserver.Config) {
		cfg.Handlers[nodeapi.DiagnosticsPattern] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			node := r.PathValue("node")
			alive := []string{"n1", "n2", "n4"}
			var d nodeapi.Diagnostics
			switch node {
			case "n1":
				d = nodeapi.Diagnostics{Node: "n1", Version: "v9", Time: ctlNow, Checks: ok, Raft: raft("leader"), Gossip: nodeapi.GossipInfo{PrimaryKey: "k1", Keys: 1, Alive: alive}}
			case "n2":
				d = nodeapi.Diagnostics{Node: "n2", Version: "v9", Time: ctlNow.Add(skew), Checks: n2Checks, Raft: raft("follower"), Gossip: nodeapi.GossipInfo{PrimaryKey: "k1", Keys: 1, Alive: alive}}
			case "n4":
				d = nodeapi.Diagnostics{Node: "n4", Version: "v9", Time: ctlNow, Checks: ok, Gossip: nodeapi.GossipInfo{PrimaryKey: "k1", Keys: 1, Alive: alive}}
			default:
				w.WriteHeader(http.StatusBadGateway)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "node " + node + " (10.0.0.3:7480) cannot be reached: connection refused"})
				return
			}
			_ = json.NewEncoder(w).Encode(d)
		})
		cfg.Handlers["GET /debug/observed"] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"nodes":[{"name":"n1","alive":true},{"name":"n4","alive":true},{"name":"removed","alive":false,"state":"dead"}],"replicas":[]}`))
		})
	}
}

func addNodes(t *testing.T, c *cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		node := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: n}}
		node.Default()
		if _, err := c.st.Create(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDoctorUnreachableNodeAndSkew: a node that does not answer is a FAIL naming it, a clock a
// minute off is a FAIL, the exit status is 1 and stderr lists the failed checks.
func TestDoctorUnreachableNodeAndSkew(t *testing.T) {
	c := newCluster(t, fakeDoctor(time.Minute, []nodeapi.Check{{Name: "disk", Status: nodeapi.StatusWarn, Message: "10% free", Hint: "free space"}}))
	addNodes(t, c, "n1", "n2", "n3")
	r := c.run(t, "", "doctor")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"CLUSTER\n",
		"OK    quorum          leader n1, seen by 2 of 3 voters (2 needed); not answering: n3",
		"FAIL  clock skew      1m0s between n2 and n1",
		"NODE n3\n  FAIL  reachable  no diagnostics: node n3 (10.0.0.3:7480) cannot be reached: connection refused",
		"NODE n2\n",
		"WARN  disk       10% free\n",
		"hint: free space",
		"NODE n4\n", // known to gossip only
		"WARN  gossip members  n1 does not see n3; n2 does not see n3; n4 does not see n3",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "NODE removed") {
		t.Error("a dead node without a Node object (removed) was asked")
	}
	if want := "error: doctor: 2 check(s) failed: cluster clock skew, n3 reachable\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

// TestDoctorAllOKExitsZero: every node answers, clocks agree, no FAIL: exit 0; -o json is the
// same report.
func TestDoctorAllOKExitsZero(t *testing.T) {
	c := newCluster(t, fakeDoctor(20*time.Millisecond, []nodeapi.Check{{Name: "docker", Status: nodeapi.StatusOK, Message: "fine"}}))
	addNodes(t, c, "n1", "n2")
	r := c.run(t, "", "doctor")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "OK  clock skew      20ms between n2 and n1") || !strings.Contains(r.stdout, " 0 FAIL\n") {
		t.Errorf("output:\n%s", r.stdout)
	}
	r = c.run(t, "", "doctor", "-o", "json")
	var rep struct {
		Cluster []nodeapi.Check `json:"cluster"`
		Nodes   []struct {
			Node   string          `json:"node"`
			Checks []nodeapi.Check `json:"checks"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("json (exit %d): %v\n%s", r.code, err, r.stdout)
	}
	if len(rep.Nodes) != 3 || rep.Nodes[0].Node != "n1" || rep.Nodes[0].Checks[0].Name != "reachable" {
		t.Errorf("json report: %+v", rep)
	}
	if r := c.run(t, "", "doctor", "-o", "yaml"); r.code != 1 || !strings.Contains(r.stderr, "want table or json") {
		t.Errorf("-o yaml: %+v", r)
	}
}
