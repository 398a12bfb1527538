package node

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/events"
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
		c.Now = clk.Now
	})
	step := func(d time.Duration) { clk.Step(d); f.now = clk.Now() }
	f.now = clk.Now()
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
		"Normal Pulled 1 pulled image echo:1",
		"Normal Pulling 1 pulling image echo:1",
		"Normal Started 1 replica 0 started (image echo:1)",
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
		"Normal Pulled 1 pulled image echo:1",
		"Normal Pulling 1 pulling image echo:1",
		"Normal Restarted 3 replica 0 restarted after exit code 137",
		"Normal Started 1 replica 0 started (image echo:1)",
		"Warning Exited 3 replica 0 exited with code 137",
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
	objs, _, err := f.st.List(f.ctx, v1.KindEvent, v1.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		e := o.(*v1.Event)
		if e.Spec.InvolvedObject != events.Ref(v1.KindService, "web") || e.Spec.Node != "n1" || e.Spec.Component != "node" {
			t.Errorf("event %s: %+v", e.Metadata.Name, e.Spec)
		}
		got = append(got, fmt.Sprintf("%s %s %d %s", e.Spec.Type, e.Spec.Reason, e.Spec.Count, e.Spec.Message))
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
