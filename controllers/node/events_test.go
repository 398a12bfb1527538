package node

import (
	"io"
	"log/slog"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/events/eventstest"
)

// The node reconciler against the fake engine reports a replica's life as Events: its image
// pulled, started, exited with its exit code, restarted; a crash loop is one Exited Event whose
// count grows, not one Event per crash.
func TestNodeReconcilerRecordsEvents(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var rec *events.Recorder
	f := newFixtureWith(t, func(c *Config) {
		var err error
		rec, err = events.New(events.Config{Store: c.Store.(*flakyStore), Node: "n1", Clock: clk, Debounce: 10 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c.Events = rec
		c.Clock = clk
	})
	step := clk.Step
	f.dock.missing["echo:1"] = true
	f.service(1, "echo:1")

	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pull", func() bool { return len(f.rec.puller.pulling()) == 0 })
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("%d running", f.running())
	}
	rec.Flush(f.ctx)
	expectEvents(t, f, []string{
		"Service/web Normal Pulled 1 pulled image echo:1",
		"Service/web Normal Pulling 1 pulling image echo:1",
		"Service/web Normal Started 1 replica 0 started (image echo:1)",
	})

	cs, _ := f.dock.List(f.ctx, map[string]string{docker.LabelReplica: "0"})
	id := cs[0].ID
	for range 3 {
		step(time.Second)
		f.dock.crash(id, 137)
		res, _ := f.rec.Reconcile(f.ctx, "web") // sees the exit; waits for the backoff
		step(res.RequeueAfter)
		if err := f.reconcile(); err != nil { // starts it again
			t.Fatal(err)
		}
		rec.Flush(f.ctx)
	}
	step(10 * time.Second) // the debounce of both series is over
	rec.Flush(f.ctx)
	expectEvents(t, f, []string{
		"Service/web Normal Pulled 1 pulled image echo:1",
		"Service/web Normal Pulling 1 pulling image echo:1",
		"Service/web Normal Restarted 3 replica 0 restarted after exit code 137",
		"Service/web Normal Started 1 replica 0 started (image echo:1)",
		"Service/web Warning Exited 3 replica 0 exited with code 137",
	})
}

// Without a recorder nothing is reported and nothing breaks (nil-safe).
func TestNodeReconcilerWithoutRecorder(t *testing.T) {
	f := newFixture(t)
	f.service(1, "echo:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("%d running", f.running())
	}
}

func expectEvents(t *testing.T, f *fixture, want []string) {
	t.Helper()
	web := events.Ref(v1.KindService, "web")
	eventstest.Expect(t, f.st, eventstest.From{Component: "node", Node: "n1", Involved: &web}, want...)
}
