package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// startAgent runs a whole agent in-process on free loopback ports, without Docker.
func startAgent(t *testing.T, name string, mut func(*config.Config)) (*Agent, *client.Client) {
	t.Helper()
	_, a := startAgentStoppable(t, name, mut)
	c, err := client.New(client.Config{Server: a.APIAddress()})
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// startAgentStoppable starts an agent and returns a function that stops it (idempotent; the
// test's cleanup stops it too).
func startAgentStoppable(t *testing.T, name string, mut func(*config.Config)) (func(), *Agent) {
	t.Helper()
	return startAgentWith(t, name, mut, Options{})
}

// startAgentWith is startAgentStoppable with the agent's Options (a fake engine: turn
// cfg.Docker.Disabled off in mut).
func startAgentWith(t *testing.T, name string, mut func(*config.Config), opts Options) (func(), *Agent) {
	t.Helper()
	cfg := config.Default()
	cfg.Node.Name = name
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	cfg.API.Address = "127.0.0.1:0"
	cfg.Raft.Address = "127.0.0.1:0"
	cfg.Gossip.Address = "127.0.0.1:0"
	cfg.Docker.Disabled = true
	cfg.Store.Memory = true
	// Agents of one test process share one network namespace: one lo, one 10.213.0.1:53. A
	// test that exercises the plane turns it on for one agent (mesh_test.go).
	cfg.Mesh.Disabled = true
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("CONSTELLATION_TEST_AGENT_LOGS") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("agent", name)
	}
	a, err := NewWithOptions(cfg, logger, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop, a
}

// raftAgents writes a token file holding one admin token, "cluster-secret", and returns the
// option of an agent on the replicated store that joins through join ("" bootstraps).
func raftAgents(t *testing.T) func(join string) func(*config.Config) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("cluster-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(join string) func(*config.Config) {
		return func(c *config.Config) {
			c.Store.Memory = false
			c.API.TokenFile = tokenFile
			if join != "" {
				c.Join = []string{join}
			}
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 20*time.Second, what, cond)
}

// eventuallyWithin polls cond until it holds or d passes. The bounds are generous: they catch a
// stall, not a slow machine (the times that matter are logged, and measured by benchmarks).
func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentServesAPIControllersAndProvider runs one agent and checks the pieces meet: the node
// registers and turns Ready through gossip and the status controller, the controller Lease is
// taken, a Service applied through the API reaches the Traefik provider, and a Service with no
// healthy replica answers with a router and no servers (503), never a missing route.
func TestAgentServesAPIControllersAndProvider(t *testing.T) {
	a, c := startAgent(t, "n1", nil)
	ctx := context.Background()
	eventually(t, "the Node Ready", func() bool {
		o, err := c.Get(ctx, v1.KindNode, "n1")
		if err != nil {
			return false
		}
		cond := v1.FindCondition(o.(*v1.Node).Status.Conditions, v1.NodeReady)
		return cond != nil && cond.Status == v1.ConditionTrue && o.(*v1.Node).Status.RaftRole == v1.RaftLeader
	})
	eventually(t, "the controller lease", a.controllerLease.IsLeader)

	svc := spec.Service("web", "registry.local/web:1", spec.Port("http", 8080), spec.HTTPRoute("web.example.com", "/", "http"))
	svc.Default()
	if _, err := c.Put(ctx, svc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the route in the provider", func() bool {
		resp, err := http.Get("http://" + a.APIAddress() + "/api/providers/traefik")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), "Host(`web.example.com`)") && strings.Contains(string(b), `"servers":[]`)
	})
	// The only node runs without Docker: the scheduler places nothing and says why.
	eventually(t, "Unschedulable reported", func() bool {
		o, err := c.Get(ctx, v1.KindService, "web")
		if err != nil {
			return false
		}
		st := o.(*v1.Service).Status
		p := v1.FindCondition(st.Conditions, v1.ServiceProgressing)
		return len(st.Assignments) == 0 && p != nil && p.Reason == v1.ReasonUnschedulable
	})

	// A route another Service already claims is refused at apply time, naming the field.
	clash := spec.Service("web2", "registry.local/web:1", spec.Port("http", 8080), spec.HTTPRoute("web.example.com", "/", "http"))
	clash.Default()
	_, err := c.Put(ctx, clash, client.PutOptions{})
	var ce *client.Error
	if !asClientError(err, &ce) || ce.StatusCode != 422 || !strings.HasPrefix(ce.Field, "spec.routes.http[0]") {
		t.Fatalf("conflicting route: err = %v, want 422 at spec.routes.http[0]", err)
	}
}

func asClientError(err error, out **client.Error) bool {
	ce, ok := err.(*client.Error)
	*out = ce
	return ok
}

// buildTestImages builds the workload images (hack/build-test-images.sh) a test that runs
// containers on the real dockerd needs.
func buildTestImages(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(filepath.Join("..", "..", "hack", "build-test-images.sh")).CombinedOutput(); err != nil {
		t.Fatalf("build test images: %v\n%s", err, out)
	}
}

// dockerFor returns a client of the real dockerd; when the test ends, every container the
// agent of node created there is removed (they outlive the agent by design).
func dockerFor(t *testing.T, node string) *docker.Client {
	t.Helper()
	dc, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cs, _ := dc.List(ctx, map[string]string{docker.LabelNode: node})
		for _, c := range cs {
			_ = dc.Remove(ctx, c.ID)
		}
		dc.Close()
	})
	return dc
}
