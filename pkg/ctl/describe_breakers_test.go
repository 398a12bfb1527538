package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// `ctl describe svc` of a Service the mesh proxies per request shows each node's breaker for
// each upstream, only that Service's listeners (not web-api's when describing web), and names
// the nodes it could not ask.
func TestDescribeShowsBreakersPerNode(t *testing.T) {
	svc := spec.Service("web", "registry.local/web:1", spec.Port("http", 8080))
	svc.Spec.Ports[0].AppProtocol = v1.AppProtocolHTTP
	svc.Default()
	if !httpProxied(svc) {
		t.Fatal("appProtocol http port not seen as proxied")
	}
	views := &breakerViews{
		views: []*client.MeshView{
			{Node: "n1", Enabled: true, Listeners: []client.MeshListener{
				{VIP: "10.213.0.5", Port: 8080, Protocol: "http", Service: "web", Endpoints: []client.MeshEndpoint{
					{Node: "-", Address: "n2/web-0", Healthy: true, Breaker: "closed"},
					{Node: "-", Address: "n3/web-1", Healthy: false, Breaker: "open"},
				}},
				{VIP: "10.213.0.9", Port: 8080, Protocol: "http", Service: "web-api", Endpoints: []client.MeshEndpoint{
					{Node: "-", Address: "n2/web-api-0", Healthy: true, Breaker: "closed"},
				}},
				{VIP: "10.213.0.5", Port: 9000, Protocol: "tcp", Service: "web", Endpoints: []client.MeshEndpoint{{Node: "n2", Address: "n2:31000", Healthy: true}}},
			}},
			{Node: "n2", Enabled: true, Listeners: []client.MeshListener{
				{VIP: "10.213.0.5", Port: 8080, Protocol: "http", Service: "web", Endpoints: []client.MeshEndpoint{
					{Node: "-", Address: "n3/web-1", Healthy: true, Breaker: "half-open"},
				}},
			}},
		},
		unreachable: []string{"n3 (10.0.0.3:7480: connection refused)"},
	}
	var buf bytes.Buffer
	if err := describeWith(&buf, svc, nil, views, time.Now()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Breakers (each node's proxy):",
		"n1    10.213.0.5:8080  n2/web-0  healthy      closed",
		"n1    10.213.0.5:8080  n3/web-1  unavailable  open",
		"n2    10.213.0.5:8080  n3/web-1  healthy      half-open",
		"Not asked:",
		"n3 (10.0.0.3:7480: connection refused)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "web-api-0") || strings.Contains(out, "n2:31000") {
		t.Errorf("another Service's or a TCP listener's endpoints shown:\n%s", out)
	}

	// Without HTTP ports there is no section at all.
	plain := spec.Service("db", "registry.local/db:1", spec.Port("pg", 5432))
	plain.Default()
	if httpProxied(plain) {
		t.Error("a plain TCP Service seen as proxied per request")
	}
}

func TestListenerOf(t *testing.T) {
	for label, want := range map[string]bool{"web": true, "web-0": true, "web-12": true, "web-api": false, "web-": false, "webx": false, "web-api-0": false} {
		if got := listenerOf(label, "web"); got != want {
			t.Errorf("listenerOf(%q, web) = %v, want %v", label, got, want)
		}
	}
}
