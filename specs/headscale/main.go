// Command headscale is the Headscale control server (2 services, https://headscale.net/stable/setup/install/container/):
// the coordination API behind a TLS route, its embedded DERP's STUN on the node's own UDP port
// 3478 (a fixed host port: clients reach it directly), metrics on 9090; and headscale-ui at
// /web on the same host. Its config.yaml and ACL policy are a Config (config/, embedded) copied
// to /etc/headscale with spec.files; the CLI's unix socket is on a tmpfs at /var/run/headscale,
// as the container guide mounts a directory there (`ctl exec headscale -- headscale users list`).
//
// Apply it with `ctl apply -f specs/headscale`.
package main

import (
	_ "embed"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

var (
	//go:embed config/config.yaml
	configYAML string
	//go:embed config/acl.hujson
	aclHuJSON string
)

func main() {
	spec.Print(
		spec.Config("headscale", map[string]string{"config.yaml": configYAML, "acl.hujson": aclHuJSON}),
		spec.Service("headscale", "headscale/headscale:0.23.0",
			spec.Args("serve"),
			spec.Port("http", 8080),
			spec.Port("metrics", 9090),
			spec.HostUDPPort("stun", 3478, 3478),
			spec.ConfigFile("/etc/headscale/config.yaml", "headscale", "config.yaml"),
			spec.ConfigFile("/etc/headscale/acl.hujson", "headscale", "acl.hujson"),
			spec.Volume("headscale-data", "/var/lib/headscale"),
			spec.Tmpfs("/var/run/headscale", 1),
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
