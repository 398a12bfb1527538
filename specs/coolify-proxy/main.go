// Command coolify-proxy is the edge of the cluster and the Coolify control panel behind it (9
// services), as https://coolify.io/docs/get-started/installation#manual-installation and the
// projects below document them:
//
//   - traefik on every node labelled role=lb, holding the node's ports 80 and 443 (hostPort) and
//     reading its routes from the local agent's provider (docs/traefik.md), which it reaches at
//     host.docker.internal:7480: the agent's --api.address must listen on the Docker bridge
//     (the default 127.0.0.1 is not reachable from a container);
//   - crowdsec reading Traefik's access logs, and its Traefik bouncer;
//   - cloudflared, a Cloudflare Tunnel to the same entry points for nodes without a public address;
//   - socket-proxy (tecnativa/docker-socket-proxy), the read-only Docker API Coolify needs;
//   - coolify with its PostgreSQL, Redis and realtime (Soketi) services.
//
// Create the Secrets first: coolify: app-key, db-password, redis-password, pusher-app-id,
// pusher-app-key, pusher-app-secret; cloudflared: token; crowdsec: bouncer-key.
// Apply it with `ctl apply -f specs/coolify-proxy`.
package main

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	spec.Print(
		spec.Service("traefik", "traefik:v3.2.1",
			spec.Global(),
			spec.NodeSelector("role", "lb"),
			spec.HostPort("web", 80, 80),
			spec.HostPort("websecure", 443, 443),
			spec.HostUDPPort("http3", 443, 443),
			spec.Port("ping", 8082),
			spec.Args(
				"--entryPoints.web.address=:80",
				"--entryPoints.web.http.redirections.entryPoint.to=websecure",
				"--entryPoints.websecure.address=:443",
				"--entryPoints.websecure.http3",
				"--entryPoints.ping.address=:8082",
				"--ping.entryPoint=ping",
				"--providers.http.endpoint=http://host.docker.internal:7480/api/providers/traefik",
				"--providers.http.pollInterval=2s",
				"--certificatesResolvers.letsencrypt.acme.tlsChallenge=true",
				"--certificatesResolvers.letsencrypt.acme.email=ops@example.com",
				"--certificatesResolvers.letsencrypt.acme.storage=/acme/acme.json",
				"--accessLog.filePath=/logs/access.log",
				"--accessLog.format=json",
			),
			spec.ExtraHost("host.docker.internal", "host-gateway"),
			spec.Volume("traefik-acme", "/acme"),
			spec.Volume("traefik-logs", "/logs"),
			spec.HTTPHealth("/ping", "ping", 10*time.Second),
			spec.StopGracePeriod(30*time.Second),
		),
		spec.Service("crowdsec", "crowdsecurity/crowdsec:v1.6.4",
			spec.Port("api", 8080),
			spec.Port("metrics", 6060),
			spec.Env("COLLECTIONS", "crowdsecurity/traefik crowdsecurity/http-cve"),
			spec.EnvFromSecret("BOUNCER_KEY_TRAEFIK", "crowdsec", "bouncer-key"),
			spec.Volume("crowdsec-data", "/var/lib/crowdsec/data"),
			spec.Volume("crowdsec-config", "/etc/crowdsec"),
			spec.ReadOnlyVolume("traefik-logs", "/var/log/traefik"),
			spec.ExecHealth(30*time.Second, "cscli", "version"),
		),
		spec.Service("crowdsec-bouncer", "fbonalair/traefik-crowdsec-bouncer:0.5.0",
			spec.Port("http", 8080),
			spec.Env("CROWDSEC_AGENT_HOST", "crowdsec:8080"),
			spec.EnvFromSecret("CROWDSEC_BOUNCER_API_KEY", "crowdsec", "bouncer-key"),
			spec.TCPHealth("http", 30*time.Second),
			spec.DependsOnHealthy("crowdsec"),
		),
		spec.Service("cloudflared", "cloudflare/cloudflared:2024.11.1",
			spec.Replicas(2),
			spec.MaxPerNode(1),
			spec.Port("metrics", 2000),
			spec.Args("tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", "run"),
			spec.EnvFromSecret("TUNNEL_TOKEN", "cloudflared", "token"),
			spec.HTTPHealth("/ready", "metrics", 15*time.Second),
		),
		spec.Service("socket-proxy", "tecnativa/docker-socket-proxy:0.3.0",
			spec.Port("docker", 2375),
			spec.Env("CONTAINERS", "1"),
			spec.Env("IMAGES", "1"),
			spec.Env("NETWORKS", "1"),
			spec.Env("INFO", "1"),
			spec.Env("POST", "0"),
			// The Docker socket is host access (docs/security.md): read-only, behind this filter.
			spec.ReadOnlyVolume("/var/run/docker.sock", "/var/run/docker.sock"),
			spec.HostAccess(),
			spec.TCPHealth("docker", 30*time.Second),
		),
		spec.Postgres("coolify-db", "postgres:15-alpine", "coolify", "coolify", spec.Key("coolify", "db-password")),
		spec.Redis("coolify-redis", "redis:7.4-alpine",
			spec.Args("redis-server", "--save", "20", "1", "--loglevel", "warning", "--requirepass", "$(REDIS_PASSWORD)"),
			spec.EnvFromSecret("REDIS_PASSWORD", "coolify", "redis-password"),
		),
		spec.Service("coolify-realtime", "ghcr.io/coollabsio/coolify-realtime:1.0.4",
			spec.Port("ws", 6001),
			spec.Port("terminal", 6002),
			spec.EnvFromSecret("SOKETI_DEFAULT_APP_ID", "coolify", "pusher-app-id"),
			spec.EnvFromSecret("SOKETI_DEFAULT_APP_KEY", "coolify", "pusher-app-key"),
			spec.EnvFromSecret("SOKETI_DEFAULT_APP_SECRET", "coolify", "pusher-app-secret"),
			spec.ExecHealth(10*time.Second, "/bin/sh", "-c", "wget -qO- http://127.0.0.1:6001/ready && wget -qO- http://127.0.0.1:6002/ready"),
			spec.Route(v1.HTTPRoute{Host: "coolify.example.com", PathPrefix: "/app", Port: "ws",
				EntryPoints: []string{"websecure"}, TLS: &v1.RouteTLS{CertResolver: "letsencrypt"}}),
		),
		spec.WebApp("coolify", "ghcr.io/coollabsio/coolify:4.0.0-beta.380", "coolify.example.com", 8080, "/api/health",
			spec.Env("APP_ENV", "production"),
			spec.Env("DB_HOST", "coolify-db"),
			spec.Env("DB_DATABASE", "coolify"),
			spec.Env("DB_USERNAME", "coolify"),
			spec.EnvFromSecret("DB_PASSWORD", "coolify", "db-password"),
			spec.Env("REDIS_HOST", "coolify-redis"),
			spec.EnvFromSecret("REDIS_PASSWORD", "coolify", "redis-password"),
			spec.EnvFromSecret("APP_KEY", "coolify", "app-key"),
			spec.EnvFromSecret("PUSHER_APP_ID", "coolify", "pusher-app-id"),
			spec.EnvFromSecret("PUSHER_APP_KEY", "coolify", "pusher-app-key"),
			spec.EnvFromSecret("PUSHER_APP_SECRET", "coolify", "pusher-app-secret"),
			spec.Env("PUSHER_HOST", "coolify-realtime"),
			spec.Env("PUSHER_PORT", "6001"),
			spec.Env("DOCKER_HOST", "tcp://socket-proxy:2375"),
			spec.Volume("coolify-data", "/data/coolify"),
			spec.DependsOnHealthy("coolify-db"),
			spec.DependsOnHealthy("coolify-redis"),
			spec.DependsOn("coolify-realtime"),
			spec.DependsOn("socket-proxy"),
		),
	)
}
