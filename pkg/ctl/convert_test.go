package ctl_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/compose"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
)

// updating reads -update (declared by printers_test.go, in package ctl's internal tests).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// fixtureEnv are the variables the testdata projects interpolate: unset here so that the
// developer's environment (HOSTNAME, say) cannot change the goldens; .env files set them.
var fixtureEnv = []string{"HOSTNAME", "PG_PASS", "PG_USER", "PG_DB", "AUTHENTIK_IMAGE", "AUTHENTIK_TAG",
	"COMPOSE_PORT_HTTP", "COMPOSE_PORT_HTTPS", "IMMICH_VERSION", "UPLOAD_LOCATION", "DB_DATA_LOCATION",
	"DB_PASSWORD", "DB_USERNAME", "DB_DATABASE_NAME", "BASE_URL", "SECRET_KEY_BASE", "TOTP_VAULT_KEY",
	"DISABLE_REGISTRATION", "ENABLE_EMAIL_VERIFICATION", "HTTPS_PORT", "WARP_TAG", "API_TOKEN", "SCRAPER_TAG",
	"COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_FILE", "MOTD", "PROXY_TOKEN"}

func clearFixtureEnv(t *testing.T) {
	for _, k := range fixtureEnv {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
}

// composeFiles lists a fixture's files as `docker compose -f` would take them: the main file,
// then compose.override.yaml if present.
func composeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var main string
	for _, n := range []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			main = filepath.Join(dir, n)
			break
		}
	}
	if main == "" {
		t.Fatalf("%s: no compose file", dir)
	}
	files := []string{main}
	if o := filepath.Join(dir, "compose.override.yaml"); fileExists(o) {
		files = append(files, o)
	}
	return files
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if updating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (rerun with -update and review the diff):\n--- got\n%s", path, got)
	}
}

// TestConvertFixtures converts every project under testdata/convert with `ctl convert -o`,
// compares the spec and the notes with the goldens, runs the spec with `ctl apply --dry-run`
// against an in-process API server (so it compiles and the server validates every object), and
// applies it for real to check that the program prints exactly what the mapping produced.
func TestConvertFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles one Go program per fixture")
	}
	clearFixtureEnv(t)
	dirs, err := filepath.Glob("testdata/convert/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() || strings.HasPrefix(filepath.Base(dir), "out-") {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := composeFiles(t, dir)
			out, err := os.MkdirTemp("testdata/convert", "out-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(out) })
			// The agent's host-access admission, as with --security.allowHostAccess: a converted
			// bind mount or privileged flag must carry the opt-in the server checks.
			c := newCluster(t, func(cfg *apiserver.Config) {
				cfg.Admit = func(_ context.Context, o v1.Object) v1.ErrorList {
					if s, ok := o.(*v1.Service); ok {
						return hostaccess.Policy{AllowHostAccess: true}.Check(&s.Spec)
					}
					return nil
				}
			})
			r := c.run(t, "", append(append([]string{"convert"}, files...), "-o", out)...)
			if r.code != 0 {
				t.Fatalf("convert: exit %d: %s", r.code, r.stderr)
			}
			src, err := os.ReadFile(filepath.Join(out, "main.go"))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(dir, "main.go.golden"), src)
			var notes []string
			var wrote string
			for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if strings.HasPrefix(l, "wrote ") {
					wrote = l
					if !strings.Contains(l, "(built)") {
						t.Errorf("convert -o inside the module did not build the spec: %s", l)
					}
					continue
				}
				notes = append(notes, l)
			}
			checkGolden(t, filepath.Join(dir, "stderr.golden"), []byte(strings.Join(notes, "\n")+"\n"))

			if r := c.run(t, "", "apply", "--dry-run", "-f", out); r.code != 0 {
				t.Fatalf("apply --dry-run: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			if r := c.run(t, "", "apply", "-f", out); r.code != 0 {
				t.Fatalf("apply: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			res, err := compose.Convert(context.Background(), files, compose.Options{Env: os.Environ()})
			if err != nil {
				t.Fatal(err)
			}
			nsvc, ncfg := 0, 0
			for _, o := range res.Objects {
				if _, ok := o.(*v1.Config); ok {
					ncfg++
				} else {
					nsvc++
				}
			}
			summary := fmt.Sprintf(": %d services, ", nsvc)
			if ncfg > 0 {
				summary = fmt.Sprintf(": %d services, %d configs, ", nsvc, ncfg)
			}
			if !strings.Contains(wrote, summary) {
				t.Errorf("summary %q does not say %q", wrote, summary)
			}
			for _, o := range res.Objects {
				o.Default()
				info, _ := v1.LookupKind(o.GetTypeMeta().Kind)
				live, err := c.st.Get(context.Background(), o.GetTypeMeta().Kind, o.GetMetadata().Name)
				if err != nil {
					t.Fatalf("%s/%s not applied: %v", info.Plural, o.GetMetadata().Name, err)
				}
				var w, g []byte
				switch want := o.(type) {
				case *v1.Service:
					w, _ = json.Marshal(want.Spec)
					g, _ = json.Marshal(live.(*v1.Service).Spec)
				case *v1.Config:
					w, _ = json.Marshal(want.Spec)
					g, _ = json.Marshal(live.(*v1.Config).Spec)
				default:
					t.Fatalf("unexpected %T in the mapping", o)
				}
				if string(w) != string(g) {
					t.Errorf("%s/%s: the program printed a different spec than the mapping:\nmapping %s\nprogram %s", info.Plural, o.GetMetadata().Name, w, g)
				}
			}
		})
	}
	if n < 10 {
		t.Fatalf("%d fixtures, want at least 10", n)
	}
}

// TestConvertStrict: --strict fails on an unmapped field and writes nothing; without it the
// same file converts with the gap on stderr.
func TestConvertStrict(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(f, []byte("services:\n  web:\n    image: nginx:1.27\n    hostname: web1\n    ulimits:\n      nproc: 512\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	out := filepath.Join(dir, "out")
	r := c.run(t, "", "convert", f, "--strict", "-o", out)
	if r.code == 0 || !strings.Contains(r.stderr, "services.web.hostname: not supported") || !strings.Contains(r.stderr, "--strict") {
		t.Fatalf("strict: exit %d, stderr %q", r.code, r.stderr)
	}
	if fileExists(filepath.Join(out, "main.go")) {
		t.Fatal("--strict wrote main.go despite the gap")
	}
	r = c.run(t, "", "convert", f)
	if r.code != 0 || !strings.Contains(r.stdout, `spec.Ulimit("nproc", 512, 512)`) || !strings.Contains(r.stderr, "services.web.hostname") {
		t.Fatalf("non-strict: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	r = c.run(t, "", "convert", filepath.Join(dir, "missing.yaml"))
	if r.code == 0 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Fatalf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestConvertProfiles: a service behind a profile appears only when the profile is enabled, and
// its host-namespace options map to the host-access fields.
func TestConvertProfiles(t *testing.T) {
	clearFixtureEnv(t)
	files := composeFiles(t, "testdata/convert/features")
	c := newCluster(t)
	r := c.run(t, "", append(append([]string{"convert"}, files...), "--profile", "debug")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`spec.Service("debug", "busybox:1.36"`, "spec.Privileged()", "spec.HostPID()"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	r = c.run(t, "", append([]string{"convert"}, files...)...)
	if strings.Contains(r.stdout, `"debug"`) {
		t.Error("profile service converted without --profile")
	}
}

// TestConvertBuildFails: with -o inside a module, a spec that does not build is an error (here
// the go tool itself fails), so exit 0 means the output builds.
func TestConvertBuildFails(t *testing.T) {
	out, err := os.MkdirTemp("testdata/convert", "out-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	var stdout, stderr strings.Builder
	code := ctl.Run(context.Background(), []string{"convert", "testdata/convert/uptime-kuma/compose.yaml", "-o", out},
		ctl.Env{Out: &stdout, Err: &stderr, GoBin: "false", Getenv: func(string) string { return "" }})
	if code == 0 || !strings.Contains(stderr.String(), "does not build") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
