package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 13: the mesh's HTTP failover proxy (docs/proxy.md). A Service with two replicas on
// n2 and n3, port http with appProtocol http, whose replica 0 answers 500 to every GET while
// its health check passes (FAIL_HOST/FAIL_STATUS of the echo image); a client container on n1
// makes N GETs by mesh name: none fails, and every answer names the replica that gave it in
// X-Constellation-Upstream.
func TestScenario13FailoverProxy(t *testing.T) {
	c := startCluster(t, harness.Options{NodeAgentArgs: map[string][]string{
		"n2": {"--node.labels.mesh=server"}, "n3": {"--node.labels.mesh=server"},
	}})
	ctx := ctxFor(t, 10*time.Minute)
	srv := spec.Service("px-srv", "constellation-test/echo:1", spec.Replicas(2), spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("mesh", "server"), spec.MaxPerNode(1),
		spec.Env("FAIL_HOST", "px-srv-0"), spec.Env("FAIL_STATUS", "500"))
	srv.Spec.Ports[0].AppProtocol = v1.AppProtocolHTTP
	cli := spec.Service("px-cli", "constellation-test/echo:1", spec.Replicas(1), spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("zone", "n1"))
	for _, s := range []*v1.Service{srv, cli} {
		if err := putService(ctx, c.Nodes[0], s); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"px-srv", "px-cli"} {
		if _, err := harness.WaitServiceReady(ctx, c.Nodes, name, 3*time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	n1 := c.Nodes[0]
	id, err := n1.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service=px-cli | head -1")
	if err != nil || strings.TrimSpace(id) == "" {
		t.Fatalf("client container on n1: %q %v", id, err)
	}
	gets := func(n int) (string, error) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return n1.Exec(pctx, "docker", "exec", strings.TrimSpace(id), "/app", "-probe", "http://px-srv:8080/",
			"-probe-count", fmt.Sprint(n), "-count-header", "X-Constellation-Upstream")
	}
	// The listener appears once n1's mesh has both replicas; wait for one clean answer.
	if err := waitUntil(ctx, time.Minute, func() error { _, err := gets(2); return err }); err != nil {
		t.Fatalf("px-srv through n1's mesh: %v", err)
	}
	// Without the proxy, half of these would be 500s: show that the failing replica is serving.
	_, derr := n1.Exec(ctx, "docker", "exec", strings.TrimSpace(id), "/app", "-probe", "http://px-srv-0.px-srv:8080/")
	t.Logf("replica 0 directly (its own address, per connection, no failover): probe error %v", derr)
	if derr == nil {
		t.Fatal("replica 0 answers 2xx on its own address: FAIL_HOST/FAIL_STATUS did not take, the scenario proves nothing")
	}
	const n = 300
	out, err := gets(n)
	t.Logf("%d GETs from n1 by mesh name, answers by X-Constellation-Upstream:\n%s", n, strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("some GETs failed or lacked X-Constellation-Upstream: %v", err)
	}
	if !strings.Contains(out, "failed 0") || !strings.Contains(out, "/px-srv-1 ") {
		t.Fatalf("want 0 failures, answered by px-srv-1 on its node, got:\n%s", out)
	}
	if strings.Contains(out, "/px-srv-0 ") {
		t.Fatalf("replica 0 (500 to every GET) is named as having answered:\n%s", out)
	}
	// The failing replica is not just absent: the proxy tried it and failed over (its breaker
	// opened). The agent's metrics on n1 say so.
	m, err := n1.Exec(ctx, "sh", "-c", "wget -qO- http://127.0.0.1:7480/metrics 2>/dev/null || curl -s http://127.0.0.1:7480/metrics")
	if err == nil {
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "constellation_proxy_failovers_total") || strings.HasPrefix(l, "constellation_proxy_breaker_state") {
				t.Log(l)
			}
		}
	}
}
