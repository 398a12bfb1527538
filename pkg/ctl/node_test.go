package ctl_test

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
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodelocal"
	"github.com/constellation-sh/constellation/pkg/store"
)

const (
	toolImage = "constellation-test/tool:1"
	readToken = "ctl-read-token-0123456789"
)

var (
	imagesOnce sync.Once
	imagesErr  error
)

// nodes is two simulated nodes, a and b, on the local dockerd, each an API server with the
// per-node API (pkg/nodelocal); ctl talks to a.
type nodes struct {
	t            *testing.T
	ctx          context.Context
	dc           *docker.Client
	st           *store.Memory
	a, b         string
	svc, volume  string
	urls         map[string]string
	mu           sync.Mutex // guards urls (read by the servers' Peer)
	containerIDs map[int32]string
}

func newNodes(t *testing.T) *nodes {
	t.Helper()
	imagesOnce.Do(func() {
		cmd := exec.Command(filepath.Join("..", "..", "hack", "build-test-images.sh"))
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			imagesErr = fmt.Errorf("build test images: %w", err)
		}
	})
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
	p := fmt.Sprintf("ctl%d-", time.Now().UnixNano()%1_000_000)
	n := &nodes{t: t, ctx: ctx, dc: dc, st: store.NewMemory(), a: p + "a", b: p + "b", svc: p + "web", volume: p + "data",
		urls: map[string]string{}, containerIDs: map[int32]string{}}
	t.Cleanup(func() {
		cancel()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		for _, node := range []string{n.a, n.b} {
			cs, _ := dc.List(cctx, map[string]string{docker.LabelNode: node})
			for _, c := range cs {
				_ = dc.Remove(cctx, c.ID)
			}
		}
		_ = dc.RemoveVolume(cctx, n.volume)
		dc.Close()
		n.st.Close()
	})
	for _, name := range []string{n.a, n.b} {
		nd := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: name}}
		if _, err := n.st.Create(ctx, nd); err != nil {
			t.Fatal(err)
		}
	}
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: n.svc}}
	svc.Spec.Image = toolImage
	svc.Spec.Volumes = []v1.VolumeMount{{Source: n.volume, Target: "/data"}}
	svc.Default()
	if _, err := n.st.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	set := auth.NewSet([]auth.Token{{Name: "admin", Scope: auth.ScopeAdmin, Secret: token}, {Name: "dash", Scope: auth.ScopeRead, Secret: readToken}})
	for _, name := range []string{n.a, n.b} {
		nl, err := nodelocal.New(nodelocal.Config{Node: name, Docker: dc, Logger: logger,
			// ctl image pull (image_test.go): the local engine's image is "local", any other
			// constellation-test/fetchable:* comes "from" peer-of-NODE (a tag of the tool
			// image), the rest is not found.
			FetchImage: func(ctx context.Context, ref string) (string, int64, error) {
				if ok, err := dc.HasImage(ctx, ref); err != nil || ok {
					return "local", 0, err
				}
				if strings.HasPrefix(ref, "constellation-test/fetchable:") {
					if out, err := exec.CommandContext(ctx, "docker", "tag", toolImage, ref).CombinedOutput(); err != nil {
						return "", 0, fmt.Errorf("docker tag: %v: %s", err, out)
					}
					return "peer-of-" + name, 4242, nil
				}
				return "", 0, fmt.Errorf("no other node gave image %s: %w", ref, docker.ErrImageNotFound)
			},
			Services: func(ctx context.Context) ([]*v1.Service, error) {
				objs, _, err := n.st.List(ctx, v1.KindService, v1.Selector{})
				var out []*v1.Service
				for _, o := range objs {
					out = append(out, o.(*v1.Service))
				}
				return out, err
			},
			Peer: func(_ context.Context, node string) (string, error) {
				n.mu.Lock()
				defer n.mu.Unlock()
				if u, ok := n.urls[node]; ok {
					return u, nil
				}
				return "", errors.New("not a node of this cluster")
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		api, err := apiserver.New(apiserver.Config{Store: n.st, Tokens: func() *auth.Set { return set }, Logger: logger,
			Gatherer: prometheus.NewRegistry(), Handlers: nl.Handlers(), Scopes: nodelocal.Scopes(),
			// Short watches: logs -f must watch again when the server ends one.
			WatchTimeout: 700 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api)
		t.Cleanup(srv.Close)
		n.mu.Lock()
		n.urls[name] = srv.URL
		n.mu.Unlock()
	}
	return n
}

// start runs replica index on node (labelled as the node reconciler does) and reports it in
// the Service's status, as the status controller would.
func (n *nodes) start(node string, index int32, env []string, cmd ...string) string {
	n.t.Helper()
	id, err := n.dc.Create(n.ctx, docker.CreateConfig{
		Name: fmt.Sprintf("%s-%s-%d", node, n.svc, index),
		Config: &container.Config{Image: toolImage, Cmd: cmd, Env: env, Labels: map[string]string{
			docker.LabelService: n.svc, docker.LabelReplica: fmt.Sprint(index), docker.LabelNode: node, docker.LabelSpecHash: "test",
		}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: n.volume, Target: "/data"}}},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.dc.Start(n.ctx, id); err != nil {
		n.t.Fatal(err)
	}
	n.report(v1.ReplicaStatus{Index: index, Node: node, ContainerID: id, State: v1.ReplicaRunning})
	return id
}

func (n *nodes) report(rs v1.ReplicaStatus) {
	n.t.Helper()
	for {
		o, err := n.st.Get(n.ctx, v1.KindService, n.svc)
		if err != nil {
			n.t.Fatal(err)
		}
		s := o.(*v1.Service)
		s.Status.ReplicaStatuses = append(s.Status.ReplicaStatuses, rs)
		s.Status.Assignments = append(s.Status.Assignments, v1.Assignment{Index: rs.Index, Node: rs.Node})
		if _, err := n.st.UpdateStatus(n.ctx, s); err == nil {
			return
		} else if !errors.Is(err, store.ErrConflict) {
			n.t.Fatal(err)
		}
	}
}

func (n *nodes) env(tok, stdin string, out, errw io.Writer) ctl.Env {
	vars := map[string]string{ctl.EnvServer: n.urls[n.a], ctl.EnvToken: tok, "CONSTELLATION_CONFIG": filepath.Join(n.t.TempDir(), "none.json")}
	return ctl.Env{In: strings.NewReader(stdin), Out: out, Err: errw, Getenv: func(k string) string { return vars[k] }}
}

func (n *nodes) ctl(tok, stdin string, args ...string) result {
	n.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(n.ctx, 60*time.Second)
	defer cancel()
	code := ctl.Run(ctx, args, n.env(tok, stdin, &out, &errb))
	return result{code, out.String(), errb.String()}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestCtlLogs: every replica's lines, from two nodes, merged by time and prefixed with the
// replica and node; a node that cannot be reached is named and the status is non-zero.
func TestCtlLogs(t *testing.T) {
	n := newNodes(t)
	n.start(n.a, 0, []string{"LINES=4", "INTERVAL=40ms"}, "serve")
	n.start(n.b, 1, []string{"LINES=4", "INTERVAL=40ms"}, "serve")
	var r result
	waitFor(t, "16 lines", func() bool {
		r = n.ctl(readToken, "", "logs", n.svc, "--timestamps")
		return r.code == 0 && strings.Count(r.stdout, "\n") == 16
	})
	var last time.Time
	for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		prefix, rest, _ := strings.Cut(l, "] ")
		if prefix != "["+n.svc+"-0 "+n.a && prefix != "["+n.svc+"-1 "+n.b {
			t.Fatalf("line %q: prefix %q", l, prefix)
		}
		ts, _, _ := strings.Cut(rest, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || tm.Before(last) {
			t.Fatalf("line %q: time %v not after %v (%v):\n%s", l, tm, last, err, r.stdout)
		}
		last = tm
	}
	for _, want := range []string{n.svc + "-0 " + n.a + "] out 4", n.svc + "-1 " + n.b + "] err 4"} {
		if r := n.ctl(readToken, "", "logs", n.svc); !strings.Contains(r.stdout, want) {
			t.Fatalf("no %q in\n%s", want, r.stdout)
		}
	}
	// One replica, its last line of each stream.
	r = n.ctl(readToken, "", "logs", n.svc+"/1", "--tail", "1")
	if r.code != 0 || strings.Contains(r.stdout, n.svc+"-0") || strings.Count(r.stdout, "\n") > 2 || !strings.Contains(r.stdout, "] ") {
		t.Fatalf("logs SVC/1 --tail 1: %+v", r)
	}
	// A replica on a node that is down: named, the others still printed, exit 1.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	n.mu.Lock()
	n.urls["gone"] = dead.URL
	n.mu.Unlock()
	n.report(v1.ReplicaStatus{Index: 2, Node: "gone", ContainerID: "0123456789ab", State: v1.ReplicaRunning})
	r = n.ctl(readToken, "", "logs", n.svc)
	if r.code != 1 || !strings.Contains(r.stderr, n.svc+"-2 on node gone: node gone") || !strings.Contains(r.stdout, "out 4") {
		t.Fatalf("a node down: %+v", r)
	}
}

// TestCtlLogsFollow: -f keeps streaming and picks up a replica that starts meanwhile, after
// the server ended the first watch.
func TestCtlLogsFollow(t *testing.T) {
	n := newNodes(t)
	n.start(n.a, 0, []string{"INTERVAL=50ms"}, "serve")
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(n.ctx)
	done := make(chan int, 1)
	go func() {
		done <- ctl.Run(ctx, []string{"logs", "-f", n.svc, "--since", "1h"}, n.env(readToken, "", &out, &errb))
	}()
	waitFor(t, "replica 0 followed", func() bool { return strings.Contains(out.String(), "] out 5") })
	time.Sleep(time.Second) // past the server's watch timeout: the first watch has ended
	n.start(n.b, 1, []string{"INTERVAL=50ms"}, "serve")
	waitFor(t, "replica 1 picked up", func() bool { return strings.Contains(out.String(), "["+n.svc+"-1 "+n.b+"] out 3") })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// TestCtlExec: the command's output and exit status through the node's agent; stdin with -i;
// admin only.
func TestCtlExec(t *testing.T) {
	n := newNodes(t)
	n.start(n.b, 0, nil, "serve")
	expect(t, n.ctl(token, "", "exec", n.svc, "--", "/app", "say", "hi", "4"), 4, "hi\n", "stderr:hi\n")
	expect(t, n.ctl(token, "abc", "exec", "-i", n.svc+"/0", "--", "/app", "cat"), 0, "abc", "")
	r := n.ctl(readToken, "", "exec", n.svc, "--", "/app", "say", "hi")
	if r.code != 1 || !strings.Contains(r.stderr, "POST /node/"+n.b+"/exec needs admin") {
		t.Fatalf("exec with a read token: %+v", r)
	}
	r = n.ctl(token, "", "exec", n.svc+"/5", "--", "/app", "say", "hi")
	if r.code != 1 || !strings.Contains(r.stderr, "has no replica 5") {
		t.Fatalf("exec in a replica that does not exist: %+v", r)
	}
}

// TestCtlVolume: ls, backup, a refused restore into a running replica, restore once stopped.
func TestCtlVolume(t *testing.T) {
	n := newNodes(t)
	id := n.start(n.b, 0, nil, "serve")
	expect(t, n.ctl(token, "", "exec", n.svc, "--", "/app", "write", "/data/pg/PG_VERSION", "16"), 0, "", "")
	r := n.ctl(readToken, "", "volume", "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "SERVICE") || !strings.Contains(r.stdout, n.volume) || !strings.Contains(r.stdout, n.b) {
		t.Fatalf("volume ls: %+v", r)
	}
	file := filepath.Join(t.TempDir(), "backup.tar")
	r = n.ctl(token, "", "volume", "backup", n.svc, "0", file)
	if r.code != 0 || !strings.Contains(r.stderr, "written to "+file) {
		t.Fatalf("backup: %+v", r)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	found := false
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		if h.Name == "pg/PG_VERSION" {
			body, _ := io.ReadAll(tr)
			found = string(body) == "16"
		}
	}
	if !found {
		t.Fatal("backup has no pg/PG_VERSION holding 16")
	}
	r = n.ctl(readToken, "", "volume", "backup", n.svc, "0", file)
	if r.code != 1 || !strings.Contains(r.stderr, "needs admin") {
		t.Fatalf("backup with a read token: %+v", r)
	}
	r = n.ctl(token, "", "volume", "restore", n.svc, "0", file)
	if r.code != 1 || !strings.Contains(r.stderr, "mounted by running container") {
		t.Fatalf("restore into a running replica: %+v", r)
	}
	expect(t, n.ctl(token, "", "exec", n.svc, "--", "/app", "write", "/data/pg/PG_VERSION", "17"), 0, "", "")
	if err := n.dc.Stop(n.ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	r = n.ctl(token, "", "volume", "restore", n.svc, "0", file)
	if r.code != 0 || !strings.Contains(r.stderr, "restored from "+file) {
		t.Fatalf("restore: %+v", r)
	}
	if err := n.dc.Start(n.ctx, id); err != nil {
		t.Fatal(err)
	}
	expect(t, n.ctl(token, "", "exec", n.svc, "--", "/app", "read", "/data/pg/PG_VERSION"), 0, "16", "")
}
