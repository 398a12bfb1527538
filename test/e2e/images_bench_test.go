package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// TestBenchImages is hack/bench-images: the time to make a 100 MB image, built inside n1's
// engine only, available on the two other engines of a 3-node docker-in-docker cluster,
// (1) by `docker save | docker load` from n1 to n2, then n1 to n3, piped through this
// machine's docker CLI (the way without a registry before issue 22), and (2) through the
// agents' peer path: a Service with one replica per node, timed until n2 and n3 both hold the
// image (and until the Service is Ready). The image is removed from n2 and n3 between the two,
// so both copy the same bytes. It prints both figures and their ratio; it fails on no figure.
func TestBenchImages(t *testing.T) {
	if os.Getenv("CONSTELLATION_E2E_BENCH") == "" {
		t.Skip("image benchmark: run hack/bench-images (sets CONSTELLATION_E2E=1 CONSTELLATION_E2E_BENCH=1)")
	}
	mb := 100
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 20*time.Minute)
	img := "constellation-test/bench-big:" + strings.ToLower(c.RunID[len(c.RunID)-8:])
	src, dst := c.Nodes[0], c.Nodes[1:]

	// A build context of a Dockerfile and mb MB of random bytes (incompressible), made and
	// built inside n1: the scratch-based echo image has no shell to RUN anything in.
	build := fmt.Sprintf(`set -e; d=$(mktemp -d); head -c %d /dev/urandom > $d/blob
printf 'FROM constellation-test/echo:1\nCOPY blob /blob\nLABEL constellation.e2e.bench=%s\n' > $d/Dockerfile
tar -C $d -c . | docker build -q -t %s -; rm -rf $d`, mb<<20, c.RunID, img)
	if out, err := src.Exec(ctx, "sh", "-c", build); err != nil {
		t.Fatalf("build %s on %s: %v\n%s", img, src.Name, err, out)
	}
	size, err := src.Docker(ctx, "image", "inspect", "-f", "{{.Size}}", img)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("image %s on %s: %s bytes\n", img, src.Name, strings.TrimSpace(size))
	absent := func() {
		for _, n := range dst {
			if _, err := n.Docker(ctx, "image", "inspect", img); err == nil {
				t.Fatalf("%s already holds %s", n.Name, img)
			}
		}
	}
	absent()

	// (1) docker save | docker load, one node after the other.
	t0 := time.Now()
	for _, n := range dst {
		pipe := fmt.Sprintf("docker exec %s docker save %s | docker exec -i %s docker load -q", src.Container, img, n.Container)
		if out, err := exec.CommandContext(ctx, "sh", "-c", pipe).CombinedOutput(); err != nil {
			t.Fatalf("save | load to %s: %v\n%s", n.Name, err, out)
		}
	}
	manual := time.Since(t0)
	fmt.Printf("docker save | docker load to %d engines in sequence: %s\n", len(dst), manual.Round(time.Millisecond))
	for _, n := range dst {
		if _, err := n.Docker(ctx, "image", "rm", img); err != nil {
			t.Fatalf("remove %s from %s: %v", img, n.Name, err)
		}
	}
	absent()

	// (2) the agents' peer path.
	const svc, host = "e2e-bench-img", "bench-img.e2e.test"
	s := echoService(svc, img, int32(len(c.Nodes)), host)
	spec.MaxPerNode(1)(s)
	t0 = time.Now()
	if err := putService(ctx, c.Nodes[0], s); err != nil {
		t.Fatal(err)
	}
	if err := waitImages(ctx, dst, img, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	peer := time.Since(t0)
	if _, err := harness.WaitServiceReady(ctx, c.Nodes, svc, 5*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(t0)
	fmt.Printf("agents' peer path to %d engines (apply → image on all): %s (Service Ready: %s)\n", len(dst), peer.Round(time.Millisecond), ready.Round(time.Millisecond))
	fmt.Printf("ratio save|load / peer path: %.2f\n", manual.Seconds()/peer.Seconds())
	out, err := c.Ctl(ctx, c.Nodes[0], "get", "events", "--for", "svc/"+svc)
	if err == nil {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "Pulled") {
				fmt.Println("event:", strings.TrimSpace(l))
			}
		}
	}
}

// waitImages polls until every node holds img.
func waitImages(ctx context.Context, nodes []*harness.Node, img string, max time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	left := map[string]*harness.Node{}
	for _, n := range nodes {
		left[n.Name] = n
	}
	for len(left) > 0 {
		for name, n := range left {
			if _, err := n.Docker(ctx, "image", "inspect", img); err == nil {
				delete(left, name)
			}
		}
		if len(left) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("image %s not on %d nodes within %s", img, len(left), max)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
