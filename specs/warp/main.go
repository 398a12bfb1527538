// Command warp is the egress stack (4 services, docs/egress.md): a Cloudflare WARP gateway
// (caomingjun/warp: warp-svc plus a SOCKS5/HTTP proxy on :1080) whose egress is checked end to
// end through its proxy port, and three workers sharing its network namespace (Compose's
// network_mode: service:warp), so everything they fetch leaves through WARP: the scraper (the
// test image docs/egress.md uses), FlareSolverr (solves Cloudflare challenges for the *arr and
// Stremio stacks) and RSS-Bridge. Apply it with `ctl apply -f specs/warp`.
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
			FailureThreshold: spec.Int32(3),
			Via:              "socks5:proxy",
			Reconnect:        []string{"warp-cli", "--accept-tos", "connect"},
		}
	}
}

func main() {
	spec.Print(
		spec.Service("warp", "caomingjun/warp:2024.11.309",
			spec.Port("proxy", 1080),
			// The dependents' ports live in this namespace: declare them here.
			spec.Port("flaresolverr", 8191),
			spec.Port("rss-bridge", 80),
			spec.Port("playwright", 3000),  // specs/firecrawl
			spec.Port("jackett", 9117),     // specs/stremio
			spec.Port("qbittorrent", 8080), // specs/media
			spec.Env("WARP_SLEEP", "2"),
			spec.Volume("warp-data", "/var/lib/cloudflare-warp"),
			// The registration can be made again: let the gateway move to another node when
			// its egress cannot be healed where it is (a sticky volume would pin it).
			spec.VolumePolicy(v1.VolumesRecreate),
			// warp-svc manages a TUN device and routes: NET_ADMIN is outside Docker's default
			// capabilities, so it needs spec.hostAccess and the agent's --security.allowHostAccess.
			spec.HostAccess(),
			spec.CapAdd("NET_ADMIN"),
			spec.Sysctl("net.ipv6.conf.all.disable_ipv6", "0"),
			spec.Sysctl("net.ipv4.conf.all.src_valid_mark", "1"),
			egressCheck(),
		),
		spec.Service("scraper", "constellation-test/fakewarp:1",
			spec.Args("-client", "https://cloudflare.com/cdn-cgi/trace", "-every", "30s"),
			spec.Env("FROM", "scraper"),
			spec.NetworkOf("warp"),
		),
		spec.Service("flaresolverr", "ghcr.io/flaresolverr/flaresolverr:v3.3.21",
			spec.Env("LOG_LEVEL", "info"),
			spec.Env("TZ", "Etc/UTC"),
			spec.EgressVia("warp"),
		),
		spec.Service("rss-bridge", "rssbridge/rss-bridge:2024-02-02",
			spec.EgressVia("warp"),
		),
	)
}
