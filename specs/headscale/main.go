// Command headscale is the Headscale control server (2 services, https://headscale.net/stable/setup/install/container/):
// the coordination API behind a TLS route, its embedded DERP's STUN on the node's own UDP port
// 3478 (a fixed host port: clients reach it directly), metrics on 9090; and headscale-ui at
// /web on the same host. The config file waits for the Config kind: until then every setting is
// an environment variable (Headscale reads HEADSCALE_* over its config, viper-style).
//
// Apply it with `ctl apply -f specs/headscale`.
package main

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	spec.Print(
		spec.Service("headscale", "headscale/headscale:0.23.0",
			spec.Args("serve"),
			spec.Port("http", 8080),
			spec.Port("metrics", 9090),
			spec.HostUDPPort("stun", 3478, 3478),
			spec.Env("HEADSCALE_SERVER_URL", "https://hs.example.com"),
			spec.Env("HEADSCALE_LISTEN_ADDR", "0.0.0.0:8080"),
			spec.Env("HEADSCALE_METRICS_LISTEN_ADDR", "0.0.0.0:9090"),
			spec.Env("HEADSCALE_DERP_SERVER_ENABLED", "true"),
			spec.Env("HEADSCALE_DERP_SERVER_STUN_LISTEN_ADDR", "0.0.0.0:3478"),
			spec.Env("HEADSCALE_DATABASE_TYPE", "sqlite"),
			spec.Env("HEADSCALE_DATABASE_SQLITE_PATH", "/var/lib/headscale/db.sqlite"),
			spec.Env("HEADSCALE_PREFIXES_V4", "100.64.0.0/10"),
			spec.Env("HEADSCALE_DNS_BASE_DOMAIN", "tailnet.example.com"),
			spec.Volume("headscale-data", "/var/lib/headscale"),
			spec.HTTPHealth("/health", "http", 15*time.Second),
			spec.HTTPSRoute("hs.example.com", "http", "letsencrypt"),
			spec.StopGracePeriod(10*time.Second),
		),
		spec.Service("headscale-ui", "ghcr.io/gurucomputing/headscale-ui:2024.02.24-beta1",
			spec.Port("http", 8080),
			spec.Env("HTTP_PORT", "8080"),
			spec.Route(v1.HTTPRoute{Host: "hs.example.com", PathPrefix: "/web", Port: "http",
				EntryPoints: []string{"websecure"}, TLS: &v1.RouteTLS{CertResolver: "letsencrypt"}}),
			spec.HTTPHealth("/web/", "http", 30*time.Second),
			spec.DependsOn("headscale"),
		),
	)
}
