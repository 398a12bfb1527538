package nodelocal_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/nodelocal"
	"github.com/constellation-sh/constellation/pkg/store"
)

const toolImage = "constellation-test/tool:1"

var imagesErr error

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "..", "..", "hack", "build-test-images.sh"))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Run(); err != nil {
		imagesErr = fmt.Errorf("build test images: %w", err)
	}
	os.Exit(m.Run())
}

const (
	adminTok   = "admin-token-0123456789"
	readTok    = "read-token-0123456789"
	roamingTok = "roaming-token-0123456789" // known on node a only
)

// env is two simulated nodes, a and b, on the local engine, each an API server with the node
// API; b's containers carry b's node label. Requests go to a.
type env struct {
	t      *testing.T
	ctx    context.Context
	dc     *docker.Client
	st     *store.Memory
	prefix string
	a, b   string // node names
	urls   map[string]string
	svc    string
	volume string
	ca     *client.Client // admin, at node a
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	dc, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := dc.Ping(ctx); err != nil {
		t.Fatalf("docker: %v", err)
	}
	prefix := fmt.Sprintf("nl%d-", time.Now().UnixNano()%1_000_000)
	e := &env{t: t, ctx: ctx, dc: dc, st: store.NewMemory(), prefix: prefix, a: prefix + "a", b: prefix + "b",
		urls: map[string]string{}, svc: prefix + "web", volume: prefix + "data"}
	t.Cleanup(func() {
		cancel()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		for _, n := range []string{e.a, e.b} {
			cs, _ := dc.List(cctx, map[string]string{docker.LabelNode: n})
			for _, c := range cs {
				_ = dc.Remove(cctx, c.ID)
			}
		}
		cs, _ := dc.List(cctx, map[string]string{docker.LabelVolumeHelper: e.volume})
		for _, c := range cs {
			_ = dc.Remove(cctx, c.ID)
		}
		_ = dc.RemoveVolume(cctx, e.volume)
		dc.Close()
		e.st.Close()
	})
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: e.svc}}
	svc.Spec.Image = toolImage
	one := int32(1)
	svc.Spec.Replicas = &one
	svc.Spec.Volumes = []v1.VolumeMount{{Source: e.volume, Target: "/data"}, {Source: "/etc/hostname", Target: "/h", ReadOnly: true}}
	if _, err := e.st.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	for _, n := range []string{e.a, e.b} {
		toks := []auth.Token{{Name: "admin", Scope: auth.ScopeAdmin, Secret: adminTok}, {Name: "dash", Scope: auth.ScopeRead, Secret: readTok}}
		if n == e.a {
			toks = append(toks, auth.Token{Name: "roaming", Scope: auth.ScopeAdmin, Secret: roamingTok})
		}
		set := auth.NewSet(toks)
		srv := httptest.NewUnstartedServer(nil)
		nl, err := nodelocal.New(nodelocal.Config{
			Node: n, Docker: dc, Logger: logger,
			Services: func(ctx context.Context) ([]*v1.Service, error) {
				objs, _, err := e.st.List(ctx, v1.KindService, v1.Selector{})
				var out []*v1.Service
				for _, o := range objs {
					out = append(out, o.(*v1.Service))
				}
				return out, err
			},
			Peer: func(_ context.Context, node string) (string, error) {
				if u, ok := e.urls[node]; ok {
					return u, nil
				}
				return "", errors.New("not a node of this cluster")
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		api, err := apiserver.New(apiserver.Config{Store: e.st, Tokens: func() *auth.Set { return set }, Logger: logger,
			Gatherer: prometheus.NewRegistry(), Handlers: nl.Handlers(), Scopes: nodelocal.Scopes()})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = api
		srv.Start()
		t.Cleanup(srv.Close)
		e.urls[n] = srv.URL
	}
	e.ca = e.client(adminTok)
	return e
}

func (e *env) client(tok string) *client.Client {
	c, err := client.New(client.Config{Server: e.urls[e.a], Token: tok})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run starts a container of replica index on node, as the node reconciler would label it.
func (e *env) run(node string, index int, env []string, cmd ...string) string {
	e.t.Helper()
	cfg := docker.CreateConfig{
		Name: fmt.Sprintf("%s-%s-%d-%d", node, e.svc, index, time.Now().UnixNano()%1000),
		Config: &container.Config{Image: toolImage, Cmd: cmd, Env: env, Labels: map[string]string{
			docker.LabelService: e.svc, docker.LabelReplica: fmt.Sprint(index), docker.LabelNode: node, docker.LabelSpecHash: "test",
		}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: e.volume, Target: "/data"}}},
	}
	id, err := e.dc.Create(e.ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.dc.Start(e.ctx, id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) logs(c *client.Client, node string, opts client.LogOptions) ([]nodeapi.LogEntry, error) {
	var out []nodeapi.LogEntry
	err := c.Logs(e.ctx, node, opts, func(l nodeapi.LogEntry) error { out = append(out, l); return nil })
	return out, err
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLogsForwarded reads the logs of a replica on node b through node a: stdout and stderr
// demultiplexed, with Docker's times, in order; --tail and follow.
func TestLogsForwarded(t *testing.T) {
	e := newEnv(t)
	id := e.run(e.b, 0, []string{"LINES=3", "INTERVAL=50ms"}, "serve")
	var got []nodeapi.LogEntry
	eventually(t, "6 lines", func() bool {
		var err error
		got, err = e.logs(e.ca, e.b, client.LogOptions{Service: e.svc, Index: 0, Tail: -1})
		if err != nil {
			t.Fatal(err)
		}
		return len(got) >= 6
	})
	var outs, errs []string
	for _, l := range got {
		if l.Time.IsZero() || l.Container != id[:12] {
			t.Errorf("line %+v: want a time and container %s", l, id[:12])
		}
		switch l.Stream {
		case "stdout":
			outs = append(outs, l.Line)
		case "stderr":
			errs = append(errs, l.Line)
		}
	}
	if strings.Join(outs, ",") != "out 1,out 2,out 3" || strings.Join(errs, ",") != "err 1,err 2,err 3" {
		t.Fatalf("stdout %q, stderr %q", outs, errs)
	}
	tail, err := e.logs(e.ca, e.b, client.LogOptions{Service: e.svc, Index: 0, Tail: 1})
	if err != nil || len(tail) > 2 || len(tail) == 0 {
		t.Fatalf("tail 1: %v %+v", err, tail)
	}
	// Through node b itself (not forwarded) the same lines.
	cb, _ := client.New(client.Config{Server: e.urls[e.b], Token: readTok})
	direct, err := e.logs(cb, e.b, client.LogOptions{Service: e.svc, Index: 0, Tail: -1})
	if err != nil || len(direct) != len(got) {
		t.Fatalf("direct: %v, %d lines, want %d", err, len(direct), len(got))
	}
	// A replica with no container on the node.
	_, err = e.logs(e.ca, e.b, client.LogOptions{Service: e.svc, Index: 7, Tail: -1})
	if client.StatusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "replica 7 has no container on node "+e.b) {
		t.Fatalf("replica 7: %v", err)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newEnv(t)
	e.run(e.b, 0, []string{"INTERVAL=30ms"}, "serve")
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	done := errors.New("done")
	err := e.client(readTok).Logs(ctx, e.b, client.LogOptions{Service: e.svc, Index: 0, Tail: -1, Follow: true}, func(l nodeapi.LogEntry) error {
		seen[l.Line] = true
		if seen["out 8"] && seen["err 8"] {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		t.Fatalf("follow ended with %v before out 8 and err 8 (seen %v)", err, seen)
	}
}

// TestScopesAndForwarding: exec needs admin (403 naming the path and scope); forwarding sends
// the caller's own token (a token node b does not know is refused by b, never replaced by a's
// credentials); a node that cannot be reached is named; a forwarded request is not forwarded.
func TestScopesAndForwarding(t *testing.T) {
	e := newEnv(t)
	e.run(e.b, 0, nil, "serve")
	_, err := e.client(readTok).Exec(e.ctx, e.b, client.ExecOptions{Service: e.svc, Index: 0, Cmd: []string{"/app", "say", "hi"}})
	if client.StatusCode(err) != http.StatusForbidden || !strings.Contains(err.Error(), "POST /node/"+e.b+"/exec needs admin") {
		t.Fatalf("exec with a read token: %v", err)
	}
	_, err = e.logs(e.client(roamingTok), e.b, client.LogOptions{Service: e.svc, Index: 0, Tail: -1})
	if client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("a token node b does not know, through a: %v, want 401 from b", err)
	}
	if _, err := e.logs(e.client(roamingTok), e.a, client.LogOptions{Service: e.svc, Index: 0, Tail: -1}); client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("the same token on node a itself: %v, want 404 (no container there)", err)
	}
	_, err = e.logs(e.ca, "nowhere", client.LogOptions{Service: e.svc, Index: 0, Tail: -1})
	if client.StatusCode(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "node nowhere") {
		t.Fatalf("unknown node: %v", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	e.urls["gone"] = dead.URL
	_, err = e.logs(e.ca, "gone", client.LogOptions{Service: e.svc, Index: 0, Tail: -1})
	if client.StatusCode(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "node gone ("+strings.TrimPrefix(dead.URL, "http://")+") cannot be reached") {
		t.Fatalf("unreachable node: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.urls[e.a]+nodeapi.LogsPath(e.b)+"?service="+e.svc+"&index=0", nil)
	req.Header.Set("Authorization", "Bearer "+adminTok)
	req.Header.Set(nodeapi.HeaderForwardedBy, "elsewhere")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("a forwarded request for another node: %s, want 421", resp.Status)
	}
}

func (e *env) exec(opts client.ExecOptions, stdin io.Reader, resize chan [2]uint16) (string, string, int) {
	e.t.Helper()
	conn, err := e.ca.Exec(e.ctx, e.b, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	var out, errb syncBuf
	code, err := nodeapi.RunSession(e.ctx, conn, stdin, &out, &errb, resize)
	if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestExecForwarded runs commands in a replica on node b through node a: output, stdin, exit
// status, a terminal and its resize.
func TestExecForwarded(t *testing.T) {
	e := newEnv(t)
	e.run(e.b, 0, nil, "serve")
	base := client.ExecOptions{Service: e.svc, Index: 0}

	o := base
	o.Cmd = []string{"/app", "say", "hello", "3"}
	out, errOut, code := e.exec(o, nil, nil)
	if out != "hello\n" || errOut != "stderr:hello\n" || code != 3 {
		t.Fatalf("say: stdout %q stderr %q code %d", out, errOut, code)
	}

	o = base
	o.Cmd, o.Stdin = []string{"/app", "cat"}, true
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: several frames
	out, _, code = e.exec(o, strings.NewReader(big), nil)
	if out != big || code != 0 {
		t.Fatalf("cat: %d bytes back of %d, code %d", len(out), len(big), code)
	}

	o = base
	o.Cmd, o.TTY, o.Height, o.Width = []string{"/app", "waitsize", "30", "100"}, true, 30, 100
	out, _, code = e.exec(o, nil, nil)
	if !strings.Contains(out, "30 100") || code != 0 {
		t.Fatalf("ttysize: %q code %d", out, code)
	}

	o = base
	o.Cmd, o.TTY, o.Height, o.Width = []string{"/app", "waitsize", "41", "123"}, true, 30, 100
	resize := make(chan [2]uint16, 1)
	resize <- [2]uint16{41, 123}
	out, _, code = e.exec(o, nil, resize)
	if code != 0 || !strings.Contains(out, "41 123") {
		t.Fatalf("resize: %q code %d", out, code)
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = string(body)
	}
}

// TestVolumes lists, backs up and restores a replica's named volume on node b through node a;
// a restore while a running container mounts it is refused.
func TestVolumes(t *testing.T) {
	e := newEnv(t)
	id := e.run(e.b, 0, nil, "serve")
	o := client.ExecOptions{Service: e.svc, Index: 0, Cmd: []string{"/app", "write", "/data/db/base", "precious"}}
	if _, _, code := e.exec(o, nil, nil); code != 0 {
		t.Fatalf("write: %d", code)
	}
	vols, err := e.ca.Volumes(e.ctx, e.b, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Volume != e.volume || vols[0].Node != e.b || fmt.Sprint(vols[0].Replicas) != "[0]" || len(vols[0].InUseBy) != 1 || vols[0].SizeBytes < int64(len("precious")) {
		t.Fatalf("volumes: %+v", vols)
	}
	var buf bytes.Buffer
	if _, err := e.ca.BackupVolume(e.ctx, e.b, e.volume, e.svc, 0, &buf); err != nil {
		t.Fatal(err)
	}
	if got := untar(t, buf.Bytes()); got["db/base"] != "precious" {
		t.Fatalf("backup holds %v", got)
	}
	_, err = e.ca.RestoreVolume(e.ctx, e.b, e.volume, e.svc, 0, bytes.NewReader(tarOf(t, map[string]string{"restored": "yes"})))
	if client.StatusCode(err) != http.StatusConflict || !strings.Contains(err.Error(), "mounted by running container") {
		t.Fatalf("restore into a running replica: %v", err)
	}
	if err := e.dc.Stop(e.ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	_, err = e.ca.RestoreVolume(e.ctx, e.b, e.volume, e.svc, 0, bytes.NewReader(tarOf(t, map[string]string{"../../etc/evil": "x"})))
	if client.StatusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "leaves the volume") {
		t.Fatalf("restore of an escaping archive: %v", err)
	}
	res, err := e.ca.RestoreVolume(e.ctx, e.b, e.volume, e.svc, 0, bytes.NewReader(tarOf(t, map[string]string{"restored": "yes", "db/base": "older"})))
	if err != nil || res.Node != e.b || res.Bytes == 0 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if err := e.dc.Start(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"/data/restored": "yes", "/data/db/base": "older"} {
		o.Cmd = []string{"/app", "read", file}
		if out, _, code := e.exec(o, nil, nil); out != want || code != 0 {
			t.Fatalf("%s after restore: %q (code %d), want %q", file, out, code, want)
		}
	}
	// A volume the Service does not mount is not reachable this way.
	_, err = e.ca.BackupVolume(e.ctx, e.b, "other", e.svc, 0, io.Discard)
	if client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("backup of another volume: %v", err)
	}
	// No helper container is left behind.
	if cs, _ := e.dc.List(e.ctx, map[string]string{docker.LabelVolumeHelper: e.volume}); len(cs) != 0 {
		t.Fatalf("%d volume helper containers left", len(cs))
	}
}
