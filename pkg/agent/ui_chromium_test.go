package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// TestStatusPageOfWholeAgentInChromium loads the status page from a whole agent on the real
// dockerd (its scheduler, node reconciler and status controller running two real containers),
// in Debian's headless Chromium, and checks the DOM shows the node, the Service, both replicas
// on that node and "2/2 ready": what the page shows is what the agent observed, not fixtures.
// Under CONSTELLATION_TEST_STRICT a missing chromium fails.
func TestStatusPageOfWholeAgentInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent and containers; run without -short")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CONSTELLATION_TEST_STRICT") != "" {
			t.Fatal("chromium is missing: run hack/chromium.sh (make test-deps does)")
		}
		t.Skip("chromium is missing: run hack/chromium.sh to install Debian's chromium")
	}
	buildTestImages(t)
	p := fmt.Sprintf("ui%d-", time.Now().UnixNano()%1_000_000)
	node, name := p+"n1", p+"web"
	_, a := startAgentStoppable(t, node, func(c *config.Config) { c.Docker.Disabled = false })
	dockerFor(t, node) // removes its containers at the end
	ctx := context.Background()
	svc := spec.Service(name, "constellation-test/echo:1", spec.Port("http", 8080), spec.Replicas(2),
		spec.HTTPRoute(name+".example.com", "/", "http"))
	svc.Default()
	if _, err := a.Store().Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		o, err := a.Store().Get(ctx, v1.KindService, name)
		if err == nil && o.(*v1.Service).Status.ReadyReplicas == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s not ready: %v %+v", name, err, o)
		}
		time.Sleep(200 * time.Millisecond)
	}

	dir := t.TempDir()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile"), "--virtual-time-budget=5000"}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, append(base, "--dump-dom", a.APIURL()+"/ui/")...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{`data-node="` + node + `"`, `data-service="` + name + `"`, `data-replica="` + name + `-0"`,
		`data-replica="` + name + `-1"`, "2/2 ready", "http " + name + ".example.com/"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
