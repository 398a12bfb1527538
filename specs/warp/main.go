// Command warp is the example egress stack (docs/egress.md): a Cloudflare WARP gateway
// (caomingjun/warp: warp-svc plus a SOCKS5/HTTP proxy on :1080) whose egress is checked end to
// end through its proxy port, and a worker sharing its network namespace (Compose's
// network_mode: service:warp). Apply it with `ctl apply -f specs/warp`.
package main

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// egressCheck probes https://cloudflare.com/cdn-cgi/trace through the gateway's SOCKS port from
// the agent's namespace (the consumer's side: it also catches the port being unreachable from
// outside), wants warp=on or warp=plus and a whole answer (a trace is about 250 bytes; point the
// URL at something larger than the MTU to catch PMTU black holes), every 15 s, unhealthy after 3
// failures. The first healing step reconnects.
func egressCheck() spec.ServiceOption {
	return func(s *v1.Service) {
		s.Spec.EgressCheck = &v1.EgressCheck{
			URL:              "https://cloudflare.com/cdn-cgi/trace",
			Expect:           "warp=(on|plus)",
			MinBytes:         200,
			Interval:         &v1.Duration{Duration: 15 * time.Second},
			Timeout:          &v1.Duration{Duration: 5 * time.Second},
			FailureThreshold: ptr(int32(3)),
			Via:              "socks5:proxy",
			Reconnect:        []string{"warp-cli", "--accept-tos", "connect"},
		}
	}
}

// sharesNamespaceOf puts the containers in the gateway's network namespace.
func sharesNamespaceOf(gateway string) spec.ServiceOption {
	return func(s *v1.Service) { s.Spec.Network = &v1.NetworkSpec{Mode: v1.NetworkModeServicePrefix + gateway} }
}

// netAdmin: warp-svc manages a TUN device and routes (NET_ADMIN is outside Docker's default
// capabilities, so it needs spec.hostAccess and the agent's --security.allowHostAccess).
func netAdmin() spec.ServiceOption {
	return func(s *v1.Service) { s.Spec.CapAdd = []string{"NET_ADMIN"} }
}

func ptr[T any](v T) *T { return &v }

func main() {
	spec.Print(
		spec.Service("warp", "caomingjun/warp:latest",
			spec.Port("proxy", 1080),
			spec.Env("WARP_SLEEP", "2"),
			spec.Volume("warp-data", "/var/lib/cloudflare-warp"),
			// The registration can be made again: let the gateway move to another node when
			// its egress cannot be healed where it is (a sticky volume would pin it).
			spec.VolumePolicy(v1.VolumesRecreate),
			spec.HostAccess(),
			netAdmin(),
			egressCheck(),
		),
		spec.Service("scraper", "constellation-test/fakewarp:1",
			spec.Args("-client", "https://cloudflare.com/cdn-cgi/trace", "-every", "30s"),
			spec.Env("FROM", "scraper"),
			sharesNamespaceOf("warp"),
		),
	)
}
