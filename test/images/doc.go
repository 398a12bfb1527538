// Package images holds the small Go programs the Docker runtime's integration tests run as
// containers (built FROM scratch by hack/build-test-images.sh, no registry needed):
//
//   - echo: an HTTP echo server with a switchable health endpoint (constellation-test/echo:1, :2)
//   - crasher: prints a few log lines and exits with a chosen code (constellation-test/crasher:1)
//   - slowstart: an HTTP server that becomes healthy only after a delay (constellation-test/slowstart:1)
package images
