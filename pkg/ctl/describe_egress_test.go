package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestDescribeShowsTheEgressChain(t *testing.T) {
	gw := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "warp"},
		Spec: v1.ServiceSpec{Image: "caomingjun/warp", Ports: []v1.ServicePort{{Name: "proxy", ContainerPort: 1080}},
			EgressCheck: &v1.EgressCheck{URL: "https://cloudflare.com/cdn-cgi/trace", Expect: "warp=(on|plus)", Via: "socks5:proxy"}}}
	gw.Status.Conditions = []v1.Condition{{Type: v1.ServiceEgressHealthy, Status: v1.ConditionFalse, Reason: v1.ReasonEgressCheckFailed, Message: "warp-0 on n1: warp=off"}}
	dep := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "scraper"},
		Spec: v1.ServiceSpec{Image: "scraper:1", Network: &v1.NetworkSpec{Mode: "service:warp"}}}
	dep.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionFalse, Reason: v1.ReasonGatewayUnhealthy, Message: "0/1 replicas ready"}}
	for _, obj := range []*v1.Service{gw, dep} {
		var buf bytes.Buffer
		if err := describe(&buf, obj, []v1.Object{gw, dep}, time.Now()); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"Egress Chain:", "Gateway:", "warp: check https://cloudflare.com/cdn-cgi/trace via socks5:proxy",
			"EgressHealthy:", "False EgressCheckFailed: warp-0 on n1: warp=off", "Dependent scraper:", "Ready False GatewayUnhealthy"} {
			if !strings.Contains(out, want) {
				t.Errorf("describe %s lacks %q:\n%s", obj.Metadata.Name, want, out)
			}
		}
	}
}
