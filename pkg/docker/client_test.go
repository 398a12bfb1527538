package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeEngine is a Docker API server whose handlers the test chooses; by default every request
// hangs until the client gives up, as a daemon that accepts connections but does not answer.
type fakeEngine struct {
	*httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc // by path suffix
	stop     chan struct{}               // ends hanging requests when the test is over
}

func newFakeEngine(t *testing.T) *fakeEngine {
	e := &fakeEngine{handlers: map[string]http.HandlerFunc{}, stop: make(chan struct{})}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		var h http.HandlerFunc
		for suffix, fn := range e.handlers {
			if strings.HasSuffix(r.URL.Path, suffix) {
				h = fn
			}
		}
		e.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		select { // hang
		case <-r.Context().Done():
		case <-e.stop:
		}
	}))
	t.Cleanup(e.Close)
	t.Cleanup(func() { close(e.stop) }) // runs before Close
	return e
}

func (e *fakeEngine) handle(suffix string, h http.HandlerFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[suffix] = h
}

// syncBuffer is a log sink the client's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestClient(t *testing.T, e *fakeEngine, to Timeouts) (*Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	c, err := New(Options{
		Host: "tcp://" + strings.TrimPrefix(e.URL, "http://"), Timeouts: to,
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		ClientOpts: []client.Opt{client.WithVersion("1.41")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, logs
}

// TestHungEngineCallsEndAtTheirDeadline: every call of a daemon that does not answer returns
// ErrTimeout (also ErrUnavailable) at its own deadline, and is logged as slow with its name and
// object. Before the deadlines, each of these calls blocked until the caller's context ended.
func TestHungEngineCallsEndAtTheirDeadline(t *testing.T) {
	e := newFakeEngine(t)
	c, logs := newTestClient(t, e, Timeouts{Call: 100 * time.Millisecond, StopGrace: 100 * time.Millisecond,
		Create: 150 * time.Millisecond, Pull: 150 * time.Millisecond, Slow: 50 * time.Millisecond})
	ctx := context.Background() // no deadline of the caller's: only the client's own bounds the calls
	calls := map[string]func() error{
		"list containers": func() error {
			_, err := c.List(ctx, map[string]string{LabelService: "web"})
			return err
		},
		"inspect container": func() error { _, err := c.Inspect(ctx, "abc"); return err },
		"start container":   func() error { return c.Start(ctx, "abc") },
		"stop container":    func() error { return c.Stop(ctx, "abc", 0) },
		"remove container":  func() error { return c.Remove(ctx, "abc") },
		"create container": func() error {
			_, err := c.Create(ctx, CreateConfig{Name: "web-0", Config: &container.Config{Image: "echo:1"}})
			return err
		},
		"inspect image":     func() error { _, err := c.HasImage(ctx, "echo:1"); return err },
		"pull image":        func() error { return c.PullImage(ctx, "echo:1", nil) },
		"ensure network":    func() error { return c.EnsureNetwork(ctx, "backend") },
		"ensure volume":     func() error { return c.EnsureVolume(ctx, "data") },
		"logs of container": func() error { _, err := c.LogTail(ctx, "abc", time.Time{}, 5); return err },
		"ping":              func() error { return c.Ping(ctx) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- call() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s still blocked after 10s: no deadline", name)
			}
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s: err = %v, want ErrTimeout and ErrUnavailable", name, err)
			}
			if !strings.Contains(logs.String(), fmt.Sprintf("call=%q", name)) && !strings.Contains(logs.String(), "call="+name) {
				t.Fatalf("%s: no slow-call log line; logs:\n%s", name, logs.String())
			}
		})
	}
	if !strings.Contains(logs.String(), "object=web-0") || !strings.Contains(logs.String(), "duration=") {
		t.Fatalf("slow-call lines name no object or duration:\n%s", logs.String())
	}
}

// TestCallerContextIsNotATimeout: a caller that gives up itself gets its own context error, not
// ErrTimeout (the engine was not judged).
func TestCallerContextIsNotATimeout(t *testing.T) {
	e := newFakeEngine(t)
	c, _ := newTestClient(t, e, Timeouts{Call: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.List(ctx, nil)
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want the caller's deadline, not ErrTimeout", err)
	}
}

// TestPullImageReportsProgress: the engine's JSON stream is folded into layers and bytes.
func TestPullImageReportsProgress(t *testing.T) {
	e := newFakeEngine(t)
	e.handle("/images/create", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for _, m := range []string{
			`{"status":"Pulling from library/echo","id":"1"}`,
			`{"status":"Pulling fs layer","id":"aaa"}`,
			`{"status":"Already exists","id":"bbb"}`,
			`{"status":"Downloading","progressDetail":{"current":1000000,"total":4000000},"id":"aaa"}`,
			`{"status":"Downloading","progressDetail":{"current":3000000,"total":4000000},"id":"aaa"}`,
			`{"status":"Download complete","id":"aaa"}`,
			`{"status":"Pull complete","id":"aaa"}`,
			`{"status":"Digest: sha256:0000"}`,
			`{"status":"Status: Downloaded newer image for echo:1"}`,
		} {
			fmt.Fprintln(w, m)
		}
	})
	c, _ := newTestClient(t, e, Timeouts{})
	var seen []PullProgress
	if err := c.PullImage(context.Background(), "echo:1", func(p PullProgress) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 {
		t.Fatal("no progress reported")
	}
	mid := seen[3] // after the second Downloading message
	if mid.Layers != 2 || mid.LayersDone != 1 || mid.BytesDone != 3000000 || mid.BytesTotal != 4000000 {
		t.Fatalf("mid-pull progress %+v", mid)
	}
	last := seen[len(seen)-1]
	if last.Layers != 2 || last.LayersDone != 2 || last.BytesDone != 4000000 || last.String() != "2/2 layers, 4.0/4.0 MB" {
		t.Fatalf("final progress %+v (%s)", last, last)
	}
}

// TestPullImageErrorInStream: an error message in the stream is ErrImageNotFound (the engine
// answered: the image cannot be had), not an outage.
func TestPullImageErrorInStream(t *testing.T) {
	e := newFakeEngine(t)
	e.handle("/images/create", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`)
	})
	c, _ := newTestClient(t, e, Timeouts{})
	err := c.PullImage(context.Background(), "nope:1", nil)
	if !errors.Is(err, ErrImageNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrImageNotFound only", err)
	}
}
