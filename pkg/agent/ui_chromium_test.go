package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/pkg/ui/uitest"
)

// TestStatusPageOfWholeAgentInChromium loads the status page from a whole agent on the real
// dockerd (its scheduler, node reconciler and status controller running two real containers),
// in Debian's headless Chromium, and waits until the DOM shows the node, the Service, both replicas
// on that node and "2/2 ready": what the page shows is what the agent observed, not fixtures.
// Under CONSTELLATION_TEST_STRICT a missing chromium fails.
func TestStatusPageOfWholeAgentInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent and containers; run without -short")
	}
	bin := uitest.Chromium(t)
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

	page := uitest.Open(t, bin, a.APIURL()+"/ui/", 1280, 900)
	page.Expect(t, `data-node="`+node+`"`, `data-service="`+name+`"`, `data-replica="`+name+`-0"`,
		`data-replica="`+name+`-1"`, "2/2 ready", "http "+name+".example.com/", `<span id="live" class="pill pill-ok"`)
}
