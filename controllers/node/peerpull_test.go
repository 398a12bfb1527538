package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/events"
)

// The pull step asks the peers first and the registry only when they cannot give the image;
// the registry's error decides the failure, the peers' is in its message.
func TestPeersFirst(t *testing.T) {
	errPeers := errors.New("no peer has it (asked n2, n3)")
	errRegistry := fmt.Errorf("pull image x:1: %w: manifest unknown", docker.ErrImageNotFound)
	cases := []struct {
		name       string
		noFetch    bool
		fetchErr   error
		pullErr    error
		wantPulls  int
		wantErr    error
		wantInErr  string
		wantSource string
	}{
		{name: "a peer has it: no registry pull", wantPulls: 0, wantSource: "n2"},
		{name: "no peer has it: registry", fetchErr: errPeers, wantPulls: 1},
		{name: "nowhere", fetchErr: errPeers, pullErr: errRegistry, wantPulls: 1, wantErr: docker.ErrImageNotFound, wantInErr: "asked n2, n3"},
		{name: "no peer fetch configured: registry only", noFetch: true, wantPulls: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pulls := 0
			pull := func(context.Context, string, func(docker.PullProgress)) error { pulls++; return tc.pullErr }
			var fetch PeerFetch = func(_ context.Context, ref string, progress func(string, int64)) (string, error) {
				if tc.fetchErr != nil {
					progress("n3", 10) // a peer that started sending, then failed
					return "", tc.fetchErr
				}
				progress("n2", 4_000_000)
				return "n2", nil
			}
			if tc.noFetch {
				fetch = nil
			}
			var src imageSources
			err := peersFirst(fetch, pull, &src, slog.New(slog.NewTextHandler(io.Discard, nil)))(context.Background(), "x:1", nil)
			if pulls != tc.wantPulls {
				t.Errorf("registry pulls = %d, want %d", pulls, tc.wantPulls)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("err = %v", err)
			case tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantInErr)):
				t.Errorf("err = %v, want %v mentioning %q", err, tc.wantErr, tc.wantInErr)
			}
			if got := src.get("x:1"); got.node != tc.wantSource {
				t.Errorf("source = %+v, want node %q", got, tc.wantSource)
			}
		})
	}
}

// Through the reconciler: a missing image a peer gives is never pulled from the registry,
// and the Pulled Event names the peer.
func TestNodeReconcilerImageFromPeer(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var rec *events.Recorder
	var f *fixture
	release := make(chan struct{})
	f = newFixtureWith(t, func(c *Config) {
		var err error
		rec, err = events.New(events.Config{Store: c.Store.(*flakyStore), Node: "n1", Clock: clk, Debounce: 10 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c.Events = rec
		c.Clock = clk
		c.PeerFetch = func(_ context.Context, ref string, progress func(string, int64)) (string, error) {
			progress("n2", 2_500_000)
			<-release
			f.dock.mu.Lock()
			defer f.dock.mu.Unlock()
			if !f.dock.missing[ref] {
				return "", fmt.Errorf("fetch of %s: it is not missing", ref)
			}
			delete(f.dock.missing, ref)
			return "n2", nil
		}
	})
	f.dock.missing["echo:1"] = true
	f.service(1, "echo:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the copy under way", func() bool { return f.rec.sources.get("echo:1").node == "n2" })
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if len(f.published) != 1 || f.published[0].Reason != v1.ReasonImagePulling ||
		!strings.Contains(f.published[0].Message, "pulling image echo:1 from node n2 for 0s: 2.5 MB") {
		t.Fatalf("while copying: published %+v", f.published)
	}
	close(release)
	waitFor(t, "the pull", func() bool { return len(f.rec.puller.pulling()) == 0 })
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("%d running", f.running())
	}
	f.dock.mu.Lock()
	pulls := f.dock.pulls
	f.dock.mu.Unlock()
	if pulls != 0 {
		t.Fatalf("%d registry pulls, want 0", pulls)
	}
	rec.Flush(f.ctx)
	expectEvents(t, f, []string{
		"Service/web Normal Pulled 1 pulled image echo:1 from node n2 (2.5 MB)",
		"Service/web Normal Pulling 1 pulling image echo:1",
		"Service/web Normal Started 1 replica 0 started (image echo:1)",
	})
}
