package ui_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/ui/uitest"
)

// TestPageInHeadlessChromium loads the page from an API server over the in-memory store (no
// tokens: loopback mode) holding a Service with two replicas in its status, in headless Chromium
// driven over the DevTools protocol, and waits until the DOM the page built shows the Service,
// both replicas and every watch stream live. It writes a screenshot to the test's output dir.
// Under CONSTELLATION_TEST_STRICT a missing chromium fails.
func TestPageInHeadlessChromium(t *testing.T) {
	bin := uitest.Chromium(t)
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
	page := uitest.Open(t, bin, srv.URL+"/ui/", 1280, 900)
	page.Expect(t, `data-service="web"`, `data-replica="web-0"`, `data-replica="web-1"`, "1/2 ready", "http web.example.com/",
		`<span id="live" class="pill pill-ok"`)
	shot := filepath.Join(t.TempDir(), "ui.png")
	if out := os.Getenv("CONSTELLATION_UI_SCREENSHOT"); out != "" {
		shot = out
	}
	if err := page.Screenshot(shot); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
