package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/agent"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/spec"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestChaosScriptKillReplica starts a one-node cluster (a whole agent on the raft store and the
// real dockerd) running a two-replica Service, plus a container that looks like a replica of
// another cluster, and runs hack/chaos.sh for two rounds of kill-replica. Each round must
// report recovery ("ok"), the script must exit 0, and the foreign container must be untouched.
func TestChaosScriptKillReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent and containers on dockerd; run without -short")
	}
	for _, tool := range []string{"bash", "jq", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (make test-deps): %v", tool, err)
		}
	}
	top, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(top, "hack", "build-test-images.sh")).CombinedOutput(); err != nil {
		t.Fatalf("build test images: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ctlBin := filepath.Join(dir, "ctl")
	build := exec.Command("go", "build", "-o", ctlBin, "./cmd/ctl")
	build.Dir = top
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ctl: %v\n%s", err, out)
	}
	tokenFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokenFile, []byte("chaos-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	node := fmt.Sprintf("chaos%d", time.Now().UnixNano()%1_000_000)
	cfg := config.Default()
	cfg.Node.Name = node
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.API.Address, cfg.Raft.Address, cfg.Gossip.Address = freeAddr(t), "127.0.0.1:0", "127.0.0.1:0"
	cfg.API.TokenFile = tokenFile
	cfg.Node.AdvertiseAddress = "127.0.0.1"
	cfg.Mesh.Disabled = true // one lo per host: other tests may run the mesh plane
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	dc, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		cs, _ := dc.List(cctx, map[string]string{docker.LabelNode: node})
		for _, c := range cs {
			_ = dc.Remove(cctx, c.ID)
		}
		dc.Close()
	})

	// A container with the labels of another cluster's node: the script must not touch it.
	foreign := node + "-foreign"
	if out, err := exec.Command("docker", "run", "-d", "--name", foreign,
		"--label", docker.LabelService+"=web", "--label", docker.LabelReplica+"=0", "--label", docker.LabelNode+"=elsewhere",
		"constellation-test/tool:1", "serve").CombinedOutput(); err != nil {
		t.Fatalf("foreign container: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", foreign).Run() })

	c, err := client.New(client.Config{Server: a.APIURL(), Token: "chaos-secret"})
	if err != nil {
		t.Fatal(err)
	}
	svc := spec.Service("web", "constellation-test/tool:1")
	svc.Spec.Command = []string{"/app"}
	svc.Spec.Args = []string{"serve"}
	two := int32(2)
	svc.Spec.Replicas = &two
	svc.Default()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := c.Put(ctx, svc, client.PutOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Service was never written")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		o, err := c.Get(ctx, v1.KindService, "web")
		if err == nil && o.(*v1.Service).Status.ReadyReplicas == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web never became ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	start := time.Now()
	cmd := exec.Command(filepath.Join(top, "hack", "chaos.sh"), "--rounds", "2", "--timeout", "45", "--faults", "kill-replica", "--seed", "1", "--ctl", ctlBin)
	cmd.Env = append(os.Environ(), "CONSTELLATION_SERVER="+a.APIURL(), "CONSTELLATION_TOKEN=chaos-secret")
	out, err := cmd.CombinedOutput()
	t.Logf("hack/chaos.sh (%s):\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("hack/chaos.sh: %v", err)
	}
	row := regexp.MustCompile(`(?m)^([12])\s+kill-replica\s+web-[01]@` + node + ` \([0-9a-f]{12}\)\s+([0-9.]+)s\s+ok$`)
	if got := row.FindAllStringSubmatch(string(out), -1); len(got) != 2 {
		t.Fatalf("want two recovered kill-replica rows in the summary, got %d", len(got))
	}
	if strings.Contains(string(out), "skipped") || strings.Contains(string(out), "timeout") {
		t.Error("a round was skipped or timed out")
	}
	st, err := exec.Command("docker", "inspect", "--format", "{{.State.Running}} {{.RestartCount}}", foreign).Output()
	if err != nil || strings.TrimSpace(string(st)) != "true 0" {
		t.Errorf("the foreign container was touched: %q %v", st, err)
	}
}
