package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/events/eventstest"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

func TestPlacementEvents(t *testing.T) {
	as := func(pairs ...any) []v1.Assignment {
		var out []v1.Assignment
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, v1.Assignment{Index: int32(pairs[i].(int)), Node: pairs[i+1].(string), SpecHash: "h"})
		}
		return out
	}
	nodes := []NodeInfo{{Name: "a", Healthy: true}, {Name: "b"}, {Name: "c", Healthy: true, Drain: true},
		{Name: "d", Healthy: true, Labels: map[string]string{"zone": "x"}}, {Name: "e", Healthy: true}}
	for _, tc := range []struct {
		name      string
		old, next []v1.Assignment
		in        Input
		plan      Plan
		want      []string
	}{
		{name: "first placement", next: as(0, "a", 1, "e"), want: []string{
			"Normal Scheduled replica 0 placed on node a", "Normal Scheduled replica 1 placed on node e"}},
		{name: "nothing changed", old: as(0, "a"), next: as(0, "a")},
		{name: "lost node", old: as(0, "b"), next: as(0, "a"), want: []string{
			"Normal Moved replica 0 placed on node a, replacing the one on b: node b is lost"}},
		{name: "drain with surge", old: as(0, "c"), next: as(0, "c", 0, "a"), want: []string{
			"Normal Moved replica 0 placed on node a, replacing the one on c: node c is draining"}},
		{name: "surge done", old: as(0, "c", 0, "a"), next: as(0, "a")},
		{name: "selector", old: as(0, "d"), next: as(0, "a"), in: Input{NodeSelector: map[string]string{"zone": "y"}}, want: []string{
			"Normal Moved replica 0 placed on node a, replacing the one on d: node d no longer matches spec.placement.nodeSelector"}},
		{name: "gone", old: as(0, "zz"), next: as(0, "a"), want: []string{
			"Normal Moved replica 0 placed on node a, replacing the one on zz: node zz is gone"}},
		{name: "failed replica", old: as(0, "e"), next: as(0, "a"),
			in:   Input{Observed: map[int32]ReplicaInfo{0: {Node: "e", Failed: true, Reason: v1.ReasonCrashLoop}}},
			want: []string{"Normal Moved replica 0 placed on node a, replacing the one on e: the replica failed there (CrashLoop)"}},
		{name: "unplaced", next: as(0, "a"), plan: Plan{Unplaced: 2, Progressing: v1.Condition{Message: "no node matches"}}, want: []string{
			"Normal Scheduled replica 0 placed on node a", "Warning FailedScheduling 2 replica(s) found no node: no node matches"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Nodes = nodes
			var got []string
			for _, e := range placementEvents(tc.old, tc.next, tc.in, tc.plan) {
				got = append(got, string(e.Type)+" "+string(e.Reason)+" "+e.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// A real scheduler reports its placements through a recorder into the store: two replicas
// Scheduled, then Moved when their node dies; reconciling again changes nothing and reports
// nothing new.
func TestSchedulerRecordsEvents(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	addNode(t, st, "b")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true})
	view.SetNode(observed.Node{Name: "b", Alive: true})
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	rec, err := events.New(events.Config{Store: st, Node: "a", Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, View: view, Clock: clk, Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	two := int32(2)
	if _, err := st.Create(ctx, &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &two}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
	}
	rec.Flush(ctx)
	got := eventLines(t, st)
	if len(got) != 2 || !strings.HasPrefix(got[0], "Service/web Normal Scheduled 1 replica 0 placed on node ") ||
		!strings.HasPrefix(got[1], "Service/web Normal Scheduled 1 replica 1 placed on node ") {
		t.Fatalf("events:\n%s", strings.Join(got, "\n"))
	}
	onB := ""
	for _, a := range getSvc(t, st, "web").Status.Assignments {
		if a.Node == "b" {
			onB = fmt.Sprintf("replica %d", a.Index)
		}
	}
	if onB == "" {
		t.Fatal("nothing placed on b")
	}
	view.SetNode(observed.Node{Name: "b", Alive: false})
	if _, err := s.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	rec.Flush(ctx)
	got = eventLines(t, st)
	want := "Service/web Normal Moved 1 " + onB + " placed on node a, replacing the one on b: node b is lost"
	found := false
	for _, l := range got {
		found = found || l == want
	}
	if len(got) != 3 || !found {
		t.Fatalf("events:\n%s\nwant a line\n%s", strings.Join(got, "\n"), want)
	}
}

func eventLines(t *testing.T, st store.Store) []string {
	t.Helper()
	return eventstest.Lines(t, st, eventstest.From{Component: "scheduler", Node: "a"})
}
