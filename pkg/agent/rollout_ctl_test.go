package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// TestCtlRolloutOnDocker drives a whole agent on the real dockerd with ctl: rollout status
// waits for a real rollout; rollout restart replaces every container (new spec hash), and
// applying the original file afterwards replaces none; history lists both revisions; undo
// --to-revision returns to the first one's hash (an unknown revision is refused naming the
// kept ones); scale adds a container, and to 0 removes them all before rollout status returns; a crash-looping image fails rollout status.
func TestCtlRolloutOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent and containers; run without -short")
	}
	buildTestImages(t)
	p := fmt.Sprintf("ro%d-", time.Now().UnixNano()%1_000_000)
	node, name := p+"n1", p+"web"
	_, a := startAgentStoppable(t, node, func(c *config.Config) {
		c.Docker.Disabled = false
		c.Mesh.Disabled = true
	})
	dc := dockerFor(t, node)
	ctx := context.Background()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := ctl.Env{In: strings.NewReader(""), Out: &out, Err: &errb, Now: time.Now,
			Getenv: func(k string) string {
				switch k {
				case ctl.EnvServer:
					return a.APIURL()
				case "CONSTELLATION_CONFIG":
					return filepath.Join(t.TempDir(), "none.json")
				}
				return ""
			}}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		code := ctl.Run(rctx, args, env)
		return code, out.String(), errb.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errs := run(args...)
		if code != 0 {
			t.Fatalf("ctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	// containers are the running replicas of the Service: container ID -> spec-hash label.
	containers := func() map[string]string {
		t.Helper()
		cs, err := dc.List(ctx, map[string]string{docker.LabelNode: node, docker.LabelService: name})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range cs {
			if c.State == "running" {
				out[c.ID] = c.Labels[docker.LabelSpecHash]
			}
		}
		return out
	}
	hashes := func(cs map[string]string) string {
		var hs []string
		for _, h := range cs {
			hs = append(hs, h)
		}
		sort.Strings(hs)
		return strings.Join(hs, ",")
	}
	// settled waits for exactly n running containers, all of one hash, and returns them.
	settled := func(n int) map[string]string {
		t.Helper()
		var cs map[string]string
		eventuallyWithin(t, 90*time.Second, fmt.Sprintf("%d containers of one spec hash", n), func() bool {
			cs = containers()
			hs := strings.Split(hashes(cs), ",")
			return len(cs) == n && hs[0] == hs[len(hs)-1]
		})
		return cs
	}

	file := filepath.Join(t.TempDir(), "web.json")
	svc := `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"` + name + `"},
		"spec":{"image":"constellation-test/echo:1","replicas":2,"ports":[{"name":"http","containerPort":8080}]}}`
	if err := os.WriteFile(file, []byte(svc), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := must("apply", "-f", file); out != "service/"+name+" created\n" {
		t.Fatalf("apply: %q", out)
	}
	out := must("rollout", "status", "svc/"+name, "--timeout", "2m")
	if !strings.HasSuffix(out, "service/"+name+" successfully rolled out: 2 of 2 updated replicas are ready\n") {
		t.Fatalf("rollout status:\n%s", out)
	}
	first := settled(2)
	firstHash := hashes(first)

	// Restart: every container replaced by one of a new spec hash.
	if out := must("rollout", "restart", "svc/"+name); out != "service/"+name+" restarted\n" {
		t.Fatalf("restart: %q", out)
	}
	must("rollout", "status", name, "--timeout", "2m")
	restarted := settled(2)
	for id := range restarted {
		if _, old := first[id]; old {
			t.Fatalf("container %s survived the restart", id)
		}
	}
	if hashes(restarted) == firstHash {
		t.Fatalf("the restart kept spec hash %s", firstHash)
	}
	o, err := a.store.Get(ctx, v1.KindService, name)
	if err != nil {
		t.Fatal(err)
	}
	gen := o.GetMetadata().Generation
	if gen != 2 || o.(*v1.Service).Spec.RestartedAt == nil {
		t.Fatalf("after the restart: generation %d restartedAt %v", gen, o.(*v1.Service).Spec.RestartedAt)
	}

	// The original file again: unchanged, so nothing can roll; the containers stay.
	if out := must("apply", "-f", file); out != "service/"+name+" unchanged\n" {
		t.Fatalf("re-apply: %q", out)
	}
	if o, _ := a.store.Get(ctx, v1.KindService, name); o.GetMetadata().Generation != gen || o.(*v1.Service).Spec.RestartedAt == nil {
		t.Fatalf("re-apply changed the spec: generation %d -> %d", gen, o.GetMetadata().Generation)
	}
	must("rollout", "status", name, "--timeout", "2m")
	if now := containers(); fmt.Sprint(now) != fmt.Sprint(restarted) {
		t.Fatalf("re-apply replaced containers: %v -> %v", restarted, now)
	}

	// History: the first revision and the restart.
	var hist string
	eventually(t, "two revisions in the history", func() bool {
		hist = must("rollout", "history", "svc/"+name)
		return strings.Count(hist, "\n") == 3
	})
	lines := strings.Split(hist, "\n")
	if !strings.HasPrefix(lines[0], "REVISION") || !strings.HasPrefix(lines[1], "1 ") || !strings.Contains(lines[1], "image constellation-test/echo:1") ||
		!strings.HasPrefix(lines[2], "2 (current)") || !strings.Contains(lines[2], "restarted at ") {
		t.Fatalf("history:\n%s", hist)
	}

	// Undo to revision 1: the first spec hash comes back.
	code, _, errs := run("rollout", "undo", name, "--to-revision", "9")
	if code != 1 || errs != "error: services/"+name+": not found: no such revision in the history: revision 9 (kept: 1, 2 (current))\n" {
		t.Fatalf("undo to 9: exit %d, %q", code, errs)
	}
	if out := must("rollout", "undo", "svc/"+name, "--to-revision", "1"); !strings.HasPrefix(out, "service/"+name+" rolled back (image constellation-test/echo:1, generation 3)") {
		t.Fatalf("undo: %q", out)
	}
	must("rollout", "status", name, "--timeout", "2m")
	if h := hashes(settled(2)); h != firstHash {
		t.Fatalf("after undo to revision 1: hashes %s, want %s", h, firstHash)
	}

	// Scale up: a third container of the same hash.
	if out := must("scale", "svc/"+name, "--replicas", "3"); out != "service/"+name+" scaled from 2 to 3 replicas\n" {
		t.Fatalf("scale: %q", out)
	}
	if out := must("rollout", "status", name, "--timeout", "2m"); !strings.HasSuffix(out, "3 of 3 updated replicas are ready\n") {
		t.Fatalf("rollout status after scale:\n%s", out)
	}
	if h := hashes(settled(3)); !strings.HasPrefix(h, firstHash+",") {
		t.Fatalf("after scale: %s", h)
	}

	// Scale to 0: rollout status returns once no container runs.
	must("scale", name, "--replicas", "0")
	if out := must("rollout", "status", name, "--timeout", "2m"); !strings.HasSuffix(out, "0 of 0 updated replicas are ready\n") {
		t.Fatalf("rollout status after scale to 0:\n%s", out)
	}
	if cs := containers(); len(cs) != 0 {
		t.Fatalf("rollout status returned with %d containers running", len(cs))
	}

	// A crash-looping image: the rollout fails, and rollout status says why.
	crash := strings.Replace(svc, "constellation-test/echo:1", "constellation-test/crasher:1", 1)
	if err := os.WriteFile(file, []byte(crash), 0o600); err != nil {
		t.Fatal(err)
	}
	must("apply", "-f", file)
	start := time.Now()
	code, out, errs = run("rollout", "status", name, "--timeout", "2m")
	if code != 1 || !strings.HasPrefix(errs, "error: service/"+name+": rollout failed: RolloutFailed: ") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("crash loop: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	t.Logf("crash loop reported after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errs))
}
