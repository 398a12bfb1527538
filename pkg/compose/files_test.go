package compose

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func convertDir(t *testing.T, dir string, env ...string) *Result {
	t.Helper()
	r, err := Convert(context.Background(), []string{filepath.Join(dir, "compose.yaml")}, Options{ProjectName: "p", Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func objects(r *Result) (map[string]*v1.Config, map[string]*v1.Service) {
	cfgs, svcs := map[string]*v1.Config{}, map[string]*v1.Service{}
	for _, o := range r.Objects {
		switch o := o.(type) {
		case *v1.Config:
			cfgs[o.Metadata.Name] = o
		case *v1.Service:
			svcs[o.Metadata.Name] = o
		}
	}
	return cfgs, svcs
}

func noteFor(r *Result, path string) (Note, bool) {
	for _, n := range r.Notes {
		if n.Path == path {
			return n, true
		}
	}
	return Note{}, false
}

// renderedConsts parses Render's output and returns its string constants, unquoted: what the
// program will hold.
func renderedConsts(t *testing.T, r *Result) map[string]string {
	t.Helper()
	src, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				lit := vs.Values[i].(*ast.BasicLit)
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatalf("%s: %v", lit.Value, err)
				}
				out[name.Name] = v
			}
		}
		return true
	})
	return out
}

// TestConfigsAndSecretsAsFiles: Compose configs become Configs (file content read relative to
// the project, inline content, an environment value) and files entries at Compose's default
// or given paths; secrets become references with Compose's 0444 mode, their values nowhere in
// the result or the rendered Go.
func TestConfigsAndSecretsAsFiles(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx
    configs:
      - site
      - source: inline
        target: /etc/inline.conf
        mode: 0640
      - source: motd
        target: motd.txt
    secrets:
      - db_password
      - source: token
        target: /etc/token
        mode: 0400
  api:
    image: api
    configs: [site]
    secrets:
      - source: db_password
        target: pw
configs:
  site: {file: ./conf/site.conf}
  inline:
    content: "a ` + "`backquote`" + ` and\r\nCRLF\n"
  motd: {environment: MOTD}
secrets:
  db_password: {file: ./secrets/db.txt}
  token: {environment: TOKEN}
`,
		"conf/site.conf": "server { listen 80; }\n",
		"secrets/db.txt": "s3cr3t-from-file",
	})
	r := convertDir(t, dir, "MOTD=hello", "TOKEN=s3cr3t-from-env")
	cfgs, svcs := objects(r)
	wantData := map[string]map[string]string{
		"site":   {"site": "server { listen 80; }\n"},
		"inline": {"inline": "a `backquote` and\r\nCRLF\n"},
		"motd":   {"motd": "hello"},
	}
	if len(cfgs) != len(wantData) {
		t.Fatalf("configs %v, want %v", cfgs, wantData)
	}
	for n, want := range wantData {
		if c := cfgs[n]; c == nil || !reflect.DeepEqual(c.Spec.Data, want) {
			t.Errorf("config %s = %+v, want data %q", n, c, want)
		}
	}
	if _, ok := r.Objects[0].(*v1.Config); !ok {
		t.Errorf("Configs must come before the Services that read them: %T first", r.Objects[0])
	}
	want := []v1.FileMount{
		{Path: "/run/secrets/db_password", Secret: "db-password", Key: "db_password", Mode: 0o444},
		{Path: "/etc/token", Secret: "token", Key: "token", Mode: 0o400},
		{Path: "/site", Config: "site", Key: "site"},
		{Path: "/etc/inline.conf", Config: "inline", Key: "inline", Mode: 0o640},
		{Path: "/motd.txt", Config: "motd", Key: "motd"},
	}
	if got := svcs["web"].Spec.Files; !reflect.DeepEqual(got, want) {
		t.Errorf("web files\n got %+v\nwant %+v", got, want)
	}
	wantAPI := []v1.FileMount{
		{Path: "/run/secrets/pw", Secret: "db-password", Key: "db_password", Mode: 0o444},
		{Path: "/site", Config: "site", Key: "site"},
	}
	if got := svcs["api"].Spec.Files; !reflect.DeepEqual(got, wantAPI) {
		t.Errorf("api files\n got %+v\nwant %+v", got, wantAPI)
	}
	var needs []string
	for _, s := range r.Secrets {
		needs = append(needs, s.Secret+"/"+s.Key+" "+s.Source)
	}
	if wantNeeds := []string{"db-password/db_password the content of ./secrets/db.txt", "token/token the value of $TOKEN"}; !reflect.DeepEqual(needs, wantNeeds) {
		t.Errorf("secrets to create %q, want %q", needs, wantNeeds)
	}
	src, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"s3cr3t-from-file", "s3cr3t-from-env"} {
		if strings.Contains(string(src), v) {
			t.Errorf("rendered spec holds the secret value %q", v)
		}
		for _, c := range cfgs {
			for _, d := range c.Spec.Data {
				if strings.Contains(d, v) {
					t.Errorf("config %s holds the secret value %q", c.Metadata.Name, v)
				}
			}
		}
	}
	// The program holds exactly the content: the raw string for plain text, a quoted one for
	// the content a raw string cannot carry (a backquote, a carriage return).
	consts := renderedConsts(t, r)
	for id, n := range map[string]string{"configSite": "site", "configInline": "inline", "configMotd": "motd"} {
		if consts[id] != wantData[n][n] {
			t.Errorf("const %s = %q, want %q", id, consts[id], wantData[n][n])
		}
	}
	if !strings.Contains(string(src), "`server { listen 80; }\n`") {
		t.Errorf("plain text is not a raw string:\n%s", src)
	}
}

// TestFileBinds: a bind of a regular file from the project directory becomes a Config of its
// content (mode 0444, 0555 for an executable) and a files entry, with a changed note; a
// directory stays a named volume, a missing file is a gap, an absolute host file stays a host
// bind; a file under another mount is refused; a read-only root is dropped for files.
func TestFileBinds(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx
    read_only: true
    tmpfs: [/run]
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
      - ./start.sh:/start.sh
      - ./html:/usr/share/nginx/html
      - ./missing.conf:/etc/missing.conf
      - ./logo.png:/usr/share/nginx/html/logo.png
      - ./nginx.conf:/run/nginx.conf
      - /etc/hostname:/etc/host-name:ro
`,
		"nginx.conf":      "events {}\n",
		"start.sh":        "#!/bin/sh\nexec nginx\n",
		"html/index.html": "<h1>hi</h1>\n",
		"logo.png":        "\x89PNG\r\n\x1a\n\x00\xff",
	})
	r := convertDir(t, dir)
	cfgs, svcs := objects(r)
	web := svcs["web"]
	want := []v1.FileMount{
		{Path: "/etc/nginx/nginx.conf", Config: "web-nginx-conf", Key: "nginx.conf"},
		{Path: "/start.sh", Config: "web-start-sh", Key: "start.sh", Mode: 0o555},
	}
	if !reflect.DeepEqual(web.Spec.Files, want) {
		t.Errorf("files\n got %+v\nwant %+v", web.Spec.Files, want)
	}
	if c := cfgs["web-nginx-conf"]; c == nil || c.Spec.Data["nginx.conf"] != "events {}\n" {
		t.Errorf("web-nginx-conf = %+v", c)
	}
	if _, ok := cfgs["web-logo-png"]; ok {
		t.Error("a file refused (under a volume) still made its Config")
	}
	wantVols := []v1.VolumeMount{{Source: "web-html", Target: "/usr/share/nginx/html"}, {Source: "/etc/hostname", Target: "/etc/host-name", ReadOnly: true}}
	if !reflect.DeepEqual(web.Spec.Volumes, wantVols) {
		t.Errorf("volumes %+v, want %+v", web.Spec.Volumes, wantVols)
	}
	if web.Spec.ReadOnlyRootFilesystem {
		t.Error("read-only root kept with files (the server refuses the pair)")
	}
	for p, want := range map[string]string{
		"services.web.volumes[0]": "changed: bind of a file became Config web-nginx-conf",
		"services.web.volumes[1]": "mode 0555",
		"services.web.volumes[3]": "not supported: ./missing.conf does not exist",
		"services.web.volumes[4]": "not supported: path /usr/share/nginx/html/logo.png is under the mount /usr/share/nginx/html",
		"services.web.volumes[5]": "not supported: path /run/nginx.conf is under the mount /run",
		"services.web.read_only":  "not supported",
	} {
		if n, ok := noteFor(r, p); !ok || !strings.Contains(n.String(), want) {
			t.Errorf("note %s = %q, want it to say %q", p, n.String(), want)
		}
	}
	d := clone(web)
	d.Default()
	if err := d.Validate().ToAggregate("services", "web"); err != nil {
		t.Errorf("the mapped Service does not validate: %v", err)
	}
}

// TestBinaryAndLargeFiles: content that is not UTF-8 goes to binaryData and renders as a
// quoted []byte; more than a Config holds is a gap, not an invalid object.
func TestBinaryAndLargeFiles(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx
    volumes:
      - ./logo.png:/srv/logo.png:ro
      - ./big.txt:/srv/big.txt:ro
`,
		"logo.png": "\x89PNG\r\n\x1a\n\x00\xff",
		"big.txt":  strings.Repeat("x", v1.MaxConfigBytes+1),
	})
	r := convertDir(t, dir)
	cfgs, svcs := objects(r)
	if c := cfgs["web-logo-png"]; c == nil || string(c.Spec.BinaryData["logo.png"]) != "\x89PNG\r\n\x1a\n\x00\xff" || c.Spec.Data != nil {
		t.Fatalf("web-logo-png = %+v", c)
	}
	if _, ok := cfgs["web-big-txt"]; ok || len(svcs["web"].Spec.Files) != 1 {
		t.Errorf("an oversized file was mapped: files %+v", svcs["web"].Spec.Files)
	}
	if n, ok := noteFor(r, "services.web.volumes[1]"); !ok || n.Level != Unsupported {
		t.Errorf("no gap noted for the oversized file: %v", r.Notes)
	}
	if got := renderedConsts(t, r)["configWebLogoPng"]; got != "\x89PNG\r\n\x1a\n\x00\xff" {
		t.Errorf("rendered binary content %q", got)
	}
}

// TestUnmappedFileSources: a config whose variable is not set, or whose file is missing, is a
// gap on the top-level path and on each reference, and nothing reads it.
func TestUnmappedFileSources(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx
    configs: [fromenv, fromfile]
configs:
  fromenv: {environment: NOT_SET_ANYWHERE}
  fromfile: {file: ./gone.conf}
  spare: {content: x}
`,
	})
	r := convertDir(t, dir)
	cfgs, svcs := objects(r)
	if len(cfgs) != 0 || len(svcs["web"].Spec.Files) != 0 {
		t.Fatalf("configs %v files %+v: want none", cfgs, svcs["web"].Spec.Files)
	}
	for p, want := range map[string]string{
		"configs.fromenv.environment": "not supported: $NOT_SET_ANYWHERE is not set",
		"configs.fromfile.file":       "not supported: cannot read ./gone.conf",
		"services.web.configs[0]":     "not supported: Config fromenv was not mapped",
		"services.web.configs[1]":     "not supported: Config fromfile was not mapped",
		"configs.spare":               "not used by any converted service",
	} {
		if n, ok := noteFor(r, p); !ok || !strings.Contains(n.String(), want) {
			t.Errorf("note %s = %q, want it to say %q", p, n.String(), want)
		}
	}
}
