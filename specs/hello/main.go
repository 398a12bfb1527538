// Command hello is the example stack: one web Service answering through Traefik at
// http://hello.localhost/. Apply it with `ctl apply -f specs/hello`.
package main

import (
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	spec.Print(
		spec.Service("hello", "constellation-test/echo:1",
			spec.Replicas(2),
			spec.Port("http", 8080),
			spec.HTTPHealth("/healthz", "http", time.Second),
			spec.HTTPRoute("hello.localhost", "/", "http"),
		),
	)
}
