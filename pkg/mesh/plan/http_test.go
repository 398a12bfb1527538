package plan

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/httpproxy"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func showHTTP(t httpproxy.Table) string {
	var b strings.Builder
	for _, e := range t {
		fmt.Fprintf(&b, "%s %s order=%s", e.Key, e.Service, e.Policy.Order)
		for _, u := range e.Upstreams {
			flags := "+"
			if !u.Healthy {
				flags = "-"
			}
			via := ""
			if u.Via != nil {
				via = " via " + u.Via.Scheme + "://" + u.Via.Address
			}
			fmt.Fprintf(&b, " [%s %s p%d w%d%s%s]", u.Name, u.URL, u.Priority, u.Weight, flags, via)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestComputeHTTP(t *testing.T) {
	prefix := netip.MustParsePrefix("10.213.0.0/16")
	web := svc("web", "10.213.0.10", 2, "10.213.0.11", "10.213.0.12")
	web.Spec.Ports[0].AppProtocol = v1.AppProtocolHTTP
	web.Default()

	llm := &v1.Service{Metadata: v1.ObjectMeta{Name: "llm"}, Spec: v1.ServiceSpec{
		Ports: []v1.ServicePort{{Name: "http", ContainerPort: 80}},
		Upstreams: []v1.Upstream{
			{URL: "https://a.example.com/v1"},
			{URL: "https://b.example.com", Via: "socks5://warp:1080"},
			{URL: "https://c.example.com", Via: "http://down:3128"},
			{URL: "https://d.example.com", Via: "socks5://missing:1080"},
		},
		Failover: &v1.Failover{Order: v1.OrderWeighted},
	}}
	llm.Status.VirtualIP = "10.213.0.30"
	llm.Default()
	warp := svc("warp", "10.213.0.40", 1, "10.213.0.41")
	down := svc("down", "10.213.0.50", 1, "10.213.0.51")
	down.Status.Conditions = []v1.Condition{{Type: ConditionEgressHealthy, Status: v1.ConditionFalse}}

	out := Compute(Input{
		Node: "n1", Prefix: prefix, Services: []*v1.Service{web, llm, warp, down},
		Replicas: []observed.Replica{
			replica("web", 0, "n1", true, map[string]string{"8080/tcp": "192.0.2.1:30001", "53/udp": "192.0.2.1:30002"}),
			replica("web", 1, "n2", false, map[string]string{"8080/tcp": "192.0.2.2:30001"}),
		},
	})
	want := "" +
		"10.213.0.10:8080 web order=priority [n1/web-0 http://192.0.2.1:30001 p0 w1+] [n2/web-1 http://192.0.2.2:30001 p1 w1-]\n" +
		"10.213.0.30:80 llm order=weighted [https://a.example.com/v1 https://a.example.com/v1 p0 w1+]" +
		" [https://b.example.com https://b.example.com p1 w1+ via socks5://10.213.0.40:1080]" +
		" [https://c.example.com https://c.example.com p2 w1- via http://10.213.0.50:3128]" +
		" [https://d.example.com https://d.example.com p3 w1- via socks5://missing:1080]\n"
	if got := showHTTP(out.HTTP); got != want {
		t.Errorf("HTTP table\n got:\n%s\nwant:\n%s", got, want)
	}
	// The http port is not also a TCP listener on the Service address; the UDP port and the
	// replica addresses stay per connection.
	for _, e := range out.Table {
		if e.VIP == netip.MustParseAddr("10.213.0.10") && e.Port == 8080 {
			t.Errorf("appProtocol http port also in the TCP table: %+v", e)
		}
		if e.Service == "llm" {
			t.Errorf("upstream Service in the TCP table: %+v", e)
		}
	}
	if !strings.Contains(show(out.Table), "10.213.0.11:8080/tcp web-0") {
		t.Errorf("replica address listener missing:\n%s", show(out.Table))
	}
	found := false
	for _, a := range out.Addresses {
		found = found || a == netip.MustParseAddr("10.213.0.30")
	}
	if !found {
		t.Error("the upstream Service's virtual IP is not in Addresses")
	}
}

func TestPolicyFromDefaults(t *testing.T) {
	p := PolicyFrom(nil)
	d := httpproxy.DefaultPolicy()
	if fmt.Sprint(p) != fmt.Sprint(d) {
		t.Errorf("PolicyFrom(nil) = %+v\nwant the proxy's defaults %+v (api/v1 and httpproxy disagree)", p, d)
	}
}
