// Package runtime holds the Docker runtime's integration tests: the scheduler, the node
// reconciler and a minimal status fold run in one process against store.NewMemory(), an
// observed.Set and the real local dockerd, with the test images of test/images (built by
// hack/build-test-images.sh, which TestMain runs). Every container, network and volume carries
// a per-run prefix and is removed at the end, also on failure.
package runtime
