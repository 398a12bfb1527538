// Command stremio is a self-hosted Stremio setup (8 services): the streaming server
// (https://github.com/Stremio/server-docker) and the addons it plays from, each as its project
// documents it: AIOStreams (aggregates the others), Comet and MediaFusion (torrent/debrid
// scrapers; MediaFusion with its Redis), Zilean (a DMM hash index, with its PostgreSQL) and
// Jackett (indexers). The scrapers fetch through WARP (egress dependents of specs/warp: apply
// that stack first, and declare their ports on warp). Addons face the web behind TLS routes,
// as Stremio clients require HTTPS.
//
// Create the Secrets first: stremio: aiostreams-secret, comet-password, mediafusion-secret,
// zilean-db-password, zilean-database-url, realdebrid-token. Apply it with `ctl apply -f specs/stremio`.
package main

import (
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	spec.Print(
		spec.WebApp("stremio-server", "stremio/server:v4.20.8", "stremio.example.com", 11470, "/",
			spec.Port("https", 12470),
			spec.Env("NO_CORS", "1"),
			spec.Volume("stremio-data", "/root/.stremio-server"),
		),
		spec.WebApp("aiostreams", "ghcr.io/viren070/aiostreams:v1.14.0", "aio.example.com", 3000, "/health",
			spec.Env("ADDON_NAME", "AIOStreams"),
			spec.Env("COMET_URL", "http://comet:8000/"),
			spec.Env("MEDIAFUSION_URL", "http://mediafusion:8000/"),
			spec.EnvFromSecret("SECRET_KEY", "stremio", "aiostreams-secret"),
		),
		spec.WebApp("comet", "g0ldyy/comet:v1.51.0", "comet.example.com", 8000, "/health",
			spec.Env("FASTAPI_HOST", "0.0.0.0"),
			spec.Env("FASTAPI_PORT", "8000"),
			spec.Env("ZILEAN_URL", "http://zilean:8181"),
			spec.Env("INDEXER_MANAGER_TYPE", "jackett"),
			spec.Env("INDEXER_MANAGER_URL", "http://warp:9117"),
			spec.EnvFromSecret("DASHBOARD_ADMIN_PASSWORD", "stremio", "comet-password"),
			spec.Volume("comet-data", "/app/data"),
			spec.DependsOn("zilean"),
		),
		spec.WebApp("mediafusion", "mhdzumair/mediafusion:4.1.2", "mediafusion.example.com", 8000, "/health",
			spec.Env("HOST_URL", "https://mediafusion.example.com"),
			spec.Env("REDIS_URL", "redis://mediafusion-redis:6379"),
			spec.EnvFromSecret("SECRET_KEY", "stremio", "mediafusion-secret"),
			spec.EnvFromSecret("REALDEBRID_TOKEN", "stremio", "realdebrid-token"),
			spec.Env("IS_SCRAP_FROM_ZILEAN", "true"),
			spec.Env("ZILEAN_URL", "http://zilean:8181"),
			spec.DependsOnHealthy("mediafusion-redis"),
		),
		spec.Redis("mediafusion-redis", "redis:7.4-alpine",
			spec.Args("redis-server", "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru"),
			spec.VolumePolicy("recreate"),
		),
		spec.Postgres("zilean-db", "postgres:17.2-alpine", "zilean", "zilean", spec.Key("stremio", "zilean-db-password")),
		spec.Service("zilean", "ipromknight/zilean:v3.3.0",
			spec.Port("http", 8181),
			spec.EnvFromSecret("Zilean__Database__ConnectionString", "stremio", "zilean-database-url"),
			spec.Env("Zilean__Dmm__EnableScraping", "true"),
			spec.Volume("zilean-data", "/app/data"),
			spec.HTTPHealth("/healthchecks/ping", "http", 30*time.Second),
			spec.HealthTiming(10*time.Second, 5, 60*time.Second),
			spec.DependsOnHealthy("zilean-db"),
		),
		spec.Service("jackett", "lscr.io/linuxserver/jackett:0.22.1004",
			spec.Env("PUID", "1000"),
			spec.Env("PGID", "1000"),
			spec.Env("TZ", "Etc/UTC"),
			spec.Env("AUTO_UPDATE", "false"),
			spec.Volume("jackett-config", "/config"),
			// Indexers see WARP's address; Jackett's 9117 answers on warp's.
			spec.EgressVia("warp"),
		),
	)
}
