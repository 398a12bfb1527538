// Command firecrawl is Firecrawl (4 services) as its docker-compose.yaml and SELF_HOST.md run it
// (https://github.com/mendableai/firecrawl/blob/main/SELF_HOST.md): the API behind a TLS route,
// the queue worker (same image, another command), the Playwright browser service, and Redis.
// The browser fetches pages from WARP's address (an egress dependent of specs/warp: apply that
// stack first), so sites see Cloudflare's egress rather than the node's.
//
// Create the Secret first: firecrawl: bull-auth-key. Apply it with `ctl apply -f specs/firecrawl`.
package main

import (
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
)

const image = "ghcr.io/mendableai/firecrawl:v1.0.0"

func common() []spec.ServiceOption {
	return []spec.ServiceOption{
		spec.Env("REDIS_URL", "redis://firecrawl-redis:6379"),
		spec.Env("REDIS_RATE_LIMIT_URL", "redis://firecrawl-redis:6379"),
		// The browser shares WARP's namespace: it answers on warp's address.
		spec.Env("PLAYWRIGHT_MICROSERVICE_URL", "http://warp:3000/scrape"),
		spec.Env("USE_DB_AUTHENTICATION", "false"),
		spec.Env("NUM_WORKERS_PER_QUEUE", "8"),
		spec.EnvFromSecret("BULL_AUTH_KEY", "firecrawl", "bull-auth-key"),
		spec.Env("LOGGING_LEVEL", "info"),
		spec.DependsOnHealthy("firecrawl-redis"),
	}
}

func main() {
	spec.Print(
		spec.Redis("firecrawl-redis", "redis:7.4-alpine",
			spec.Args("redis-server", "--bind", "0.0.0.0"),
			spec.VolumePolicy("recreate"), // a cache and a queue: losing it on a move is fine
		),
		spec.WebApp("firecrawl-api", image, "crawl.example.com", 3002, "",
			append(common(),
				spec.Env("HOST", "0.0.0.0"),
				spec.Env("PORT", "3002"),
				spec.Command("pnpm", "run", "start:production"),
				spec.TCPHealth("http", 15*time.Second),
				spec.Replicas(2),
			)...),
		spec.Service("firecrawl-worker", image,
			append(common(),
				spec.Command("pnpm", "run", "workers"),
				spec.Replicas(2),
				spec.DependsOn("firecrawl-api"),
			)...),
		spec.Service("firecrawl-playwright", "ghcr.io/mendableai/playwright-service:v1.0.0",
			spec.Env("PORT", "3000"),
			spec.Env("BLOCK_MEDIA", "true"),
			spec.ShmSizeMB(1024),
			spec.EgressVia("warp"),
		),
	)
}
