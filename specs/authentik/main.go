// Command authentik is the authentik identity provider (3 services) as
// https://docs.goauthentik.io/docs/install-config/install/docker-compose documents it for
// 2025.10 (which needs no Redis): PostgreSQL, the server behind a TLS route and the worker,
// both started once the database is healthy. Create the Secret first:
//
//	authentik: pg-password, secret-key
//
// Apply it with `ctl apply -f specs/authentik`.
package main

import (
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
)

const image = "ghcr.io/goauthentik/server:2025.10.1"

// common is what server and worker share: the database settings and the secret key.
func common() []spec.ServiceOption {
	return []spec.ServiceOption{
		spec.Env("AUTHENTIK_POSTGRESQL__HOST", "authentik-db"),
		spec.Env("AUTHENTIK_POSTGRESQL__USER", "authentik"),
		spec.Env("AUTHENTIK_POSTGRESQL__NAME", "authentik"),
		spec.EnvFromSecret("AUTHENTIK_POSTGRESQL__PASSWORD", "authentik", "pg-password"),
		spec.EnvFromSecret("AUTHENTIK_SECRET_KEY", "authentik", "secret-key"),
		spec.Env("AUTHENTIK_ERROR_REPORTING__ENABLED", "false"),
		spec.DependsOnHealthy("authentik-db"),
	}
}

func main() {
	spec.Print(
		spec.Postgres("authentik-db", "postgres:16.6-alpine", "authentik", "authentik", spec.Key("authentik", "pg-password")),
		spec.WebApp("authentik-server", image, "auth.example.com", 9000, "",
			append(common(),
				spec.Args("server"),
				spec.Replicas(2),
				spec.Port("https", 9443),
				spec.Port("metrics", 9300),
				// ak healthcheck is the image's own check (it asks the server's /-/health/live/).
				spec.ExecHealth(30*time.Second, "ak", "healthcheck"),
				spec.HealthTiming(10*time.Second, 3, 60*time.Second),
				spec.Volume("authentik-media", "/media"),
				spec.Volume("authentik-templates", "/templates"),
			)...),
		spec.Service("authentik-worker", image,
			append(common(),
				spec.Args("worker"),
				spec.ExecHealth(30*time.Second, "ak", "healthcheck"),
				spec.HealthTiming(10*time.Second, 3, 60*time.Second),
				spec.Volume("authentik-media", "/media"),
				spec.Volume("authentik-certs", "/certs"),
				spec.Volume("authentik-templates", "/templates"),
			)...),
	)
}
