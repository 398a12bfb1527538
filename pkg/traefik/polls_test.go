package traefik

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestProviderRecordsPolls: every request for the configuration is recorded per client IP
// (status, User-Agent, time from the provider's clock); the routes endpoint is not a poll.
func TestProviderRecordsPolls(t *testing.T) {
	f := newProviderFixture(t)
	if got := f.p.Polls(); len(got) != 0 {
		t.Fatalf("polls before any request: %+v", got)
	}
	poll := func(remote, agent string) int {
		req := httptest.NewRequest(http.MethodGet, ProviderPath, nil)
		req.RemoteAddr = remote
		req.Header.Set("User-Agent", agent)
		rec := httptest.NewRecorder()
		f.p.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := poll("10.0.0.5:4000", "Traefik/3.6"); code != http.StatusServiceUnavailable {
		t.Fatalf("before the first render: %d", code)
	}
	if err := f.p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(5 * time.Second)
	if code := poll("10.0.0.5:4001", "Traefik/3.6"); code != http.StatusOK {
		t.Fatalf("after the render: %d", code)
	}
	f.now = f.now.Add(time.Second)
	poll("10.0.0.6:4000", "curl/8")
	do(f.p.RoutesHandler(), http.MethodGet, "") // not a poll

	got := f.p.Polls()
	if len(got) != 2 {
		t.Fatalf("polls: %+v", got)
	}
	if got[0].Client != "10.0.0.6" || got[0].Agent != "curl/8" || got[0].Count != 1 {
		t.Errorf("most recent first: %+v", got[0])
	}
	want := Poll{Client: "10.0.0.5", Agent: "Traefik/3.6", Last: f.now.Add(-time.Second), Status: http.StatusOK, Count: 2}
	if got[1] != want {
		t.Errorf("10.0.0.5: got %+v, want %+v", got[1], want)
	}
}

// TestPollTrackerBounded: beyond maxPollers clients the oldest is forgotten.
func TestPollTrackerBounded(t *testing.T) {
	var tr pollTracker
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxPollers + 1 {
		req := httptest.NewRequest(http.MethodGet, ProviderPath, nil)
		req.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)
		tr.record(req, 200, t0.Add(time.Duration(i)*time.Second))
	}
	if len(tr.by) != maxPollers {
		t.Fatalf("%d clients kept, want %d", len(tr.by), maxPollers)
	}
	if _, ok := tr.by["10.0.0.0"]; ok {
		t.Error("the oldest client was kept")
	}
}
