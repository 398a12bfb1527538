package dns

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainerResolves runs a FROM scratch container (Go's resolver, testdata/lookup) with this
// server as its --dns and constellation.internal as --dns-search, on the default bridge (the
// container asks the server directly) and on a user-defined network (Docker's embedded resolver
// at 127.0.0.11 asks it), the way the agent will create containers. It needs a local dockerd and
// the right to bind the bridge gateway's port 53; otherwise it is skipped.
func TestContainerResolves(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no Docker")
	}
	if err := exec.Command("docker", "version").Run(); err != nil {
		t.Skipf("no docker: %v", err)
	}
	image := buildLookupImage(t)
	up := startUpstream(t)

	network := fmt.Sprintf("constellation-meshdns-test-%d", os.Getpid())
	docker(t, "network", "create", network)
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", network).Run() })

	names := []string{
		"web", "web.", "web.constellation.internal", "WEB.Constellation.Internal",
		"web-0.web", "web-1.web.constellation.internal", "web-0.web.",
		"rs0-primary", "rs0-primary.constellation.internal",
		"nope.constellation.internal", "web-9.web", "example.com",
	}
	want := map[string]string{
		"web": "10.213.0.1", "web.": "10.213.0.1", "web.constellation.internal": "10.213.0.1",
		"WEB.Constellation.Internal": "10.213.0.1",
		"web-0.web":                  "10.213.0.2", "web-1.web.constellation.internal": "10.213.0.3", "web-0.web.": "10.213.0.2",
		"rs0-primary": "10.213.0.11", "rs0-primary.constellation.internal": "10.213.0.11",
		"nope.constellation.internal": "ERR notfound", "web-9.web": "ERR notfound",
		"example.com": "192.0.2.1", // forwarded to the fake upstream
	}
	for _, net := range []string{"bridge", network} {
		t.Run(net, func(t *testing.T) {
			gw := strings.TrimSpace(docker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", net))
			if gw == "" {
				// The default bridge may not list its gateway in IPAM; docker0 carries it.
				gw = "172.17.0.1"
			}
			s, err := New(Config{Upstreams: []string{up.addr}})
			if err != nil {
				t.Fatal(err)
			}
			s.SetTable(testTable())
			if _, err := s.Listen(gw + ":53"); err != nil {
				t.Skipf("cannot bind the gateway's port 53: %v", err)
			}
			defer s.Close()
			args := append([]string{"run", "--rm", "--network", net, "--dns", gw, "--dns-search", Domain, image}, names...)
			out := docker(t, args...)
			t.Logf("container output:\n%s", out)
			got := map[string]string{}
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				if l := sc.Text(); !strings.HasPrefix(l, "#") {
					name, rest, _ := strings.Cut(l, " ")
					got[name] = rest
				}
			}
			for _, n := range names {
				if got[n] != want[n] {
					t.Errorf("%s: got %q, want %q", n, got[n], want[n])
				}
			}
		})
	}
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildLookupImage builds testdata/lookup statically into a FROM scratch image tagged with the
// binary's hash (no registry needed; rebuilt only when the binary changes).
func buildLookupImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "app"), "./testdata/lookup")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build lookup: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "app"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	image := "constellation-test/meshdns-lookup:" + hex.EncodeToString(sum[:6])
	if exec.Command("docker", "image", "inspect", image).Run() == nil {
		return image
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "build", "-q", "-t", image, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	return image
}
