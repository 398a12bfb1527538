package ctl

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestParseReplicaRef(t *testing.T) {
	for in, want := range map[string]string{
		"web": "web/-1", "web/2": "web/2", "svc/web": "web/-1", "services/web/0": "web/0",
		"web/x": "error", "web/-1": "error", "a/b/c": "error", "/1": "error",
	} {
		r, err := parseReplicaRef(in)
		got := fmt.Sprintf("%s/%d", r.service, r.index)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parseReplicaRef(%q) = %s (%v), want %s", in, got, err, want)
		}
	}
}

func TestLogTargets(t *testing.T) {
	svc := &v1.Service{}
	svc.Status.ReplicaStatuses = []v1.ReplicaStatus{{Index: 1, Node: "n2", ContainerID: "c1"}, {Index: 0, Node: "n1", ContainerID: "c0"}}
	svc.Status.Assignments = []v1.Assignment{{Index: 0, Node: "n1"}, {Index: 2, Node: "n3"}}
	var got []string
	for _, tg := range logTargets(svc, -1) {
		got = append(got, tg.key())
	}
	if strings.Join(got, " ") != "0/n1/c0 1/n2/c1 2/n3/" {
		t.Fatalf("targets %v", got)
	}
	if ts := logTargets(svc, 2); len(ts) != 1 || ts[0].node != "n3" {
		t.Fatalf("index 2: %+v", ts)
	}
}

// TestLogMerger: lines are held for the window, then printed oldest first, whichever stream
// delivered them first; a flush prints everything.
func TestLogMerger(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	m := &logMerger{window: 300 * time.Millisecond}
	m.add(logLine{time: t0.Add(20 * time.Millisecond), arrived: t0, text: "b"})
	m.add(logLine{time: t0.Add(10 * time.Millisecond), arrived: t0.Add(100 * time.Millisecond), text: "a"}) // late
	m.add(logLine{time: t0.Add(20 * time.Millisecond), arrived: t0.Add(150 * time.Millisecond), text: "b2"})
	if got := m.ready(t0.Add(200*time.Millisecond), false); len(got) != 0 {
		t.Fatalf("printed %d lines within the window", len(got))
	}
	texts := func(ls []logLine) string {
		var s []string
		for _, l := range ls {
			s = append(s, l.text)
		}
		return strings.Join(s, ",")
	}
	if got := texts(m.ready(t0.Add(420*time.Millisecond), false)); got != "a,b" {
		t.Fatalf("after the window: %q, want a,b (b2 arrived later and waits)", got)
	}
	m.add(logLine{time: t0, arrived: t0.Add(430 * time.Millisecond), text: "old"})
	if got := texts(m.ready(t0.Add(430*time.Millisecond), true)); got != "old,b2" {
		t.Fatalf("flush: %q", got)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	if got, err := parseSince("90m", now); err != nil || !got.Equal(now.Add(-90*time.Minute)) {
		t.Fatal(got, err)
	}
	if got, err := parseSince("2026-12-01T00:00:00Z", now); err != nil || got.Day() != 1 {
		t.Fatal(got, err)
	}
	for _, bad := range []string{"-5m", "yesterday"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
