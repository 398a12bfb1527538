package e2e

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// requireE2E skips the test unless CONSTELLATION_E2E is set: these tests start Docker
// containers and take minutes, so plain `go test ./...` must not run them.
func requireE2E(t *testing.T) {
	t.Helper()
	if os.Getenv("CONSTELLATION_E2E") == "" {
		t.Skip("end-to-end test: needs Docker and starts node containers; set CONSTELLATION_E2E=1 to run it (docs/e2e.md)")
	}
}

// startCluster starts a cluster for t and removes it when t ends; on failure it prints the
// nodes' log tails and keeps the log directory.
func startCluster(t *testing.T, opts harness.Options) *harness.Cluster {
	t.Helper()
	requireE2E(t)
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	if v := os.Getenv("CONSTELLATION_E2E_NODES"); v != "" && opts.Nodes == 0 {
		opts.Nodes, _ = strconv.Atoi(v)
	}
	if os.Getenv("CONSTELLATION_E2E_MEMORY_STORE") != "" {
		opts.MemoryStore = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.KeepLogs()
			t.Logf("node logs kept in %s\n%s", c.Dir, c.DumpLogs(25))
		}
		t0 := time.Now()
		if err := c.Close(); err != nil {
			t.Errorf("close cluster %s: %v", c.RunID, err)
		}
		t.Logf("cluster %s removed in %s", c.RunID, time.Since(t0).Round(time.Millisecond))
	})
	return c
}

// ctxFor returns a context that ends with the test (or after max).
func ctxFor(t *testing.T, max time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	t.Cleanup(cancel)
	return ctx
}
