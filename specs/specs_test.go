// Package specs_test runs every stack under specs/ as `ctl apply` does and validates what it
// prints against an in-process API server with the agent's admission checks (host access
// allowed, as --security.allowHostAccess does; route conflicts; dependsOn cycles).
package specs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v4"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/traefik"
)

const token = "specs-token"

// stacks are the product's stacks and their Service counts (specs/README.md's table). A stack
// directory not listed here, or a count that changed, fails the test: update both.
var stacks = map[string]int{
	"hello": 1, "warp": 4, "coolify-proxy": 9, "headscale": 2, "authentik": 3, "metrics": 9,
	"unsend": 2, "firecrawl": 4, "wordpress": 2, "llm": 5, "stremio": 8, "media": 10,
}

type server struct {
	st  *store.Memory
	url string
}

func newServer(t *testing.T) *server {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	admit := func(ctx context.Context, obj v1.Object) v1.ErrorList {
		svc, ok := obj.(*v1.Service)
		if !ok {
			return nil
		}
		errs := hostaccess.Policy{AllowHostAccess: true}.Check(&svc.Spec)
		objs, _, err := st.List(ctx, v1.KindService, v1.Selector{})
		if err != nil {
			return v1.ErrorList{{Field: "metadata.name", Message: err.Error()}}
		}
		var others []*v1.Service
		for _, o := range objs {
			if o.GetMetadata().Name != svc.Metadata.Name {
				others = append(others, o.(*v1.Service))
			}
		}
		errs = append(errs, traefik.AdmitService(svc, others)...)
		if e := v1.DependencyCycle(svc, others); e != nil {
			errs = append(errs, e)
		}
		return errs
	}
	api, err := apiserver.New(apiserver.Config{Store: st, Token: token, Admit: admit,
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &server{st: st, url: srv.URL}
}

func (s *server) ctl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vars := map[string]string{ctl.EnvServer: s.url, ctl.EnvToken: token}
	code := ctl.Run(ctx, args, ctl.Env{In: strings.NewReader(""), Out: &out, Err: &errb,
		Getenv: func(k string) string { return vars[k] }})
	return code, out.String() + errb.String()
}

// run prints a stack's objects as ctl apply's `go run` does.
func run(t *testing.T, dir string) []v1.Object {
	t.Helper()
	cmd := exec.Command("go", "run", "./"+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./%s: %v\n%s", dir, err, stderr.String())
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(out, &raws); err != nil {
		t.Fatalf("%s prints no JSON array: %v", dir, err)
	}
	var objs []v1.Object
	for _, r := range raws {
		o, err := v1.Decode(r)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestStacks: every directory under specs/ is a stack that runs, validates on the server (dry
// run), applies next to all the others (no route or host port clash the server refuses, no
// dependsOn cycle), and names in dependsOn and network only Services some stack defines.
func TestStacks(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles every stack")
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "testdata" {
			dirs = append(dirs, e.Name())
		}
	}
	sort.Strings(dirs)
	seen := map[string]bool{}
	for _, d := range dirs {
		seen[d] = true
		if _, ok := stacks[d]; !ok {
			t.Errorf("specs/%s is not in the table of stacks (specs_test.go, specs/README.md)", d)
		}
	}
	for d := range stacks {
		if !seen[d] {
			t.Errorf("specs/%s is missing", d)
		}
	}
	srv := newServer(t)
	defined := map[string]string{}
	configs := map[string]string{} // Config name -> stack
	refs := map[string][]string{}
	for _, d := range dirs {
		t.Run(d, func(t *testing.T) {
			objs := run(t, d)
			own := map[string]*v1.Config{}
			for _, o := range objs {
				c, ok := o.(*v1.Config)
				if !ok {
					continue
				}
				if other, dup := configs[c.Metadata.Name]; dup {
					t.Errorf("config %s is defined by specs/%s and specs/%s", c.Metadata.Name, other, d)
				}
				configs[c.Metadata.Name] = d
				own[c.Metadata.Name] = c
				checkConfigSyntax(t, c)
			}
			n := 0
			for _, o := range objs {
				s, ok := o.(*v1.Service)
				if !ok {
					continue
				}
				// A file reads a key of a Config its own stack defines (a missing one would hold
				// the replica back with FileSourceNotFound).
				for i, f := range s.Spec.Files {
					if f.Config == "" {
						continue
					}
					c, ok := own[f.Config]
					if !ok {
						t.Errorf("services/%s: spec.files[%d]: config %q is not defined by specs/%s", s.Metadata.Name, i, f.Config, d)
					} else if _, ok := c.Spec.Value(f.Key); !ok {
						t.Errorf("services/%s: spec.files[%d]: config %s has no key %q", s.Metadata.Name, i, f.Config, f.Key)
					}
				}
				n++
				if other, dup := defined[s.Metadata.Name]; dup {
					t.Errorf("service %s is defined by specs/%s and specs/%s", s.Metadata.Name, other, d)
				}
				defined[s.Metadata.Name] = d
				for _, dep := range s.Spec.DependsOn {
					refs[d] = append(refs[d], dep.Service)
				}
				if owner, ok := s.Spec.NetworkOwner(); ok {
					refs[d] = append(refs[d], owner)
				}
			}
			if want := stacks[d]; n != want {
				t.Errorf("specs/%s has %d Services, the table says %d", d, n, want)
			}
			if code, out := srv.ctl(t, "apply", "--dry-run", "-f", filepath.Join(".", d)); code != 0 {
				t.Fatalf("ctl apply --dry-run -f specs/%s: exit %d\n%s", d, code, out)
			}
			if code, out := srv.ctl(t, "apply", "-f", filepath.Join(".", d)); code != 0 {
				t.Fatalf("ctl apply -f specs/%s (next to the stacks before it): exit %d\n%s", d, code, out)
			}
		})
	}
	for d, rs := range refs {
		for _, r := range rs {
			if _, ok := defined[r]; !ok {
				t.Errorf("specs/%s refers to Service %q, which no stack defines", d, r)
			}
		}
	}
}

// checkConfigSyntax parses the YAML and JSON keys of a Config, so a stack cannot ship a file its
// program would refuse to read at start.
func checkConfigSyntax(t *testing.T, c *v1.Config) {
	t.Helper()
	for k, v := range c.Spec.Data {
		var doc any
		var err error
		switch {
		case strings.HasSuffix(k, ".yml") || strings.HasSuffix(k, ".yaml"):
			err = yaml.Unmarshal([]byte(v), &doc)
		case strings.HasSuffix(k, ".json"):
			err = json.Unmarshal([]byte(v), &doc)
		default:
			continue
		}
		if err != nil {
			t.Errorf("configs/%s: spec.data[%s]: %v", c.Metadata.Name, k, err)
		} else if doc == nil {
			t.Errorf("configs/%s: spec.data[%s]: empty document", c.Metadata.Name, k)
		}
	}
}

// TestInvalidStackFails: the same path refuses a stack the server would refuse, so TestStacks
// can fail. testdata/invalid has a Service whose route names a port it does not have.
func TestInvalidStackFails(t *testing.T) {
	srv := newServer(t)
	code, out := srv.ctl(t, "apply", "--dry-run", "-f", "testdata/invalid")
	if code == 0 {
		t.Fatalf("invalid stack applied:\n%s", out)
	}
	if !strings.Contains(out, "spec.routes.http[0].port") {
		t.Errorf("the error does not name the field:\n%s", out)
	}
}
