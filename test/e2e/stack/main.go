// Command stack is the end-to-end suite's stack of several Services (applied with
// `ctl apply -f test/e2e/stack` next to specs/hello). Every route answers "echo VERSION ..." and
// the suite checks each one through every load-balancer node.
package main

import (
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	spec.Print(
		spec.Service("e2e-web", "constellation-test/echo:1",
			spec.Replicas(3),
			spec.Port("http", 8080),
			spec.HTTPHealth("/healthz", "http", time.Second),
			spec.HTTPRoute("web.e2e.test", "/", "http"),
		),
		spec.Service("e2e-api", "constellation-test/echo:1",
			spec.Replicas(2),
			spec.Port("http", 8080),
			spec.HTTPHealth("/healthz", "http", time.Second),
			spec.HTTPRoute("api.e2e.test", "/v1", "http"),
		),
		spec.Service("e2e-blue", "constellation-test/echo:2",
			spec.Replicas(1),
			spec.Port("http", 8080),
			spec.HTTPHealth("/healthz", "http", time.Second),
			spec.HTTPRoute("blue.e2e.test", "/", "http"),
		),
	)
}
