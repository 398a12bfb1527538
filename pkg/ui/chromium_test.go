package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/pkg/store"
)

// TestPageInHeadlessChromium loads the page from an API server over the in-memory store (no
// tokens: loopback mode) holding a Service with two replicas in its status, and checks the DOM
// Chromium built shows the Service and both replicas. It writes a screenshot to the test's
// output dir. Under CONSTELLATION_TEST_STRICT a missing chromium fails.
func TestPageInHeadlessChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CONSTELLATION_TEST_STRICT") != "" {
			t.Fatal("chromium is missing: run hack/chromium.sh (make test-deps does)")
		}
		t.Skip("chromium is missing: run hack/chromium.sh to install Debian's chromium")
	}
	st := store.NewMemory()
	srv := serveStore(t, st)
	ctx := context.Background()
	svc := spec.Service("web", "registry.local/web:1", spec.Port("http", 8080), spec.Replicas(2), spec.HTTPRoute("web.example.com", "/", "http"))
	svc.Default()
	out, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*v1.Service)
	s.Status.Replicas, s.Status.ReadyReplicas = 2, 1
	s.Status.ReplicaStatuses = []v1.ReplicaStatus{
		{Index: 0, Node: "n1", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "10.0.0.1:31000"},
		{Index: 1, Node: "n2", State: v1.ReplicaRunning, Health: v1.HealthStarting, Address: "10.0.0.2:31000"},
	}
	if _, err := st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile"), "--virtual-time-budget=5000"}
		b, err := exec.CommandContext(cctx, bin, append(base, args...)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(b)
	}
	dom := run("--dump-dom", srv.URL+"/ui/")
	for _, want := range []string{`data-service="web"`, `data-replica="web-0"`, `data-replica="web-1"`, "1/2 ready", "http web.example.com/"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	shot := filepath.Join(dir, "ui.png")
	if out := os.Getenv("CONSTELLATION_UI_SCREENSHOT"); out != "" {
		shot = out
	}
	run("--window-size=1280,900", "--screenshot="+shot, srv.URL+"/ui/")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
