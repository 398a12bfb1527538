package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// askingClock is a FakeClock that reports each wait the schedule asks for, once it is set.
type askingClock struct {
	*clocktesting.FakeClock
	asked chan time.Duration
}

func newAskingClock() *askingClock {
	return &askingClock{FakeClock: clocktesting.NewFakeClock(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)), asked: make(chan time.Duration, 1)}
}

func (c *askingClock) After(d time.Duration) <-chan time.Time {
	ch := c.FakeClock.After(d)
	c.asked <- d
	return ch
}

// waiting waits until the schedule waits on the clock and returns for how long.
func (c *askingClock) waiting(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the schedule never waited for its next tick")
		return 0
	}
}

// tick waits until the schedule waits its interval want, then steps the clock past it.
func (c *askingClock) tick(t *testing.T, want time.Duration) {
	t.Helper()
	if d := c.waiting(t); d != want {
		t.Fatalf("schedule waits %s, want the interval %s", d, want)
	}
	c.Step(want)
}

type attempt struct {
	path string
	err  error
}

// Every tick writes one decodable file; only the newest Keep are kept; files the schedule did
// not write are left alone; a failed Take is reported and the next tick tries again; an
// inactive tick (not the lease holder) writes nothing and reports nothing.
func TestScheduleRetention(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snaps")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "keep-me.csnap")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newAskingClock()
	var rev atomic.Int64
	var fail, active atomic.Bool
	active.Store(true)
	done := make(chan attempt, 1)
	s, err := NewSchedule(ScheduleConfig{
		Dir: dir, Interval: time.Hour, Keep: 3, Clock: clk,
		Take: func(context.Context) (*Snapshot, error) {
			if fail.Load() {
				return nil, errors.New("store unavailable")
			}
			sn := sample()
			sn.Header.Revision = 42 + rev.Add(1)
			return sn, nil
		},
		Active: active.Load,
		Done:   func(p string, err error) { done <- attempt{p, err} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- s.Run(ctx) }()

	var written []string
	for i := range 5 {
		clk.tick(t, time.Hour)
		a := <-done
		if a.err != nil {
			t.Fatalf("snapshot %d: %v", i, a.err)
		}
		written = append(written, a.path)
		if _, err := ReadFile(a.path); err != nil {
			t.Fatalf("snapshot %d does not decode: %v", i, err)
		}
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || files[0] != written[2] || files[2] != written[4] {
		t.Fatalf("kept %v, want the newest 3 of %v", files, written)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("retention removed a file it did not write: %v", err)
	}

	fail.Store(true)
	clk.tick(t, time.Hour)
	if a := <-done; a.err == nil || a.path != "" {
		t.Fatalf("a failed Take reported %+v", a)
	}
	fail.Store(false)

	active.Store(false)
	clk.tick(t, time.Hour)
	clk.tick(t, time.Hour) // the second wait proves the inactive tick was skipped
	select {
	case a := <-done:
		t.Fatalf("an inactive tick made an attempt: %+v", a)
	default:
	}
	active.Store(true)
	clk.tick(t, time.Hour)
	if a := <-done; a.err != nil {
		t.Fatal(a.err)
	}
	if files, _ := List(dir); len(files) != 3 {
		t.Fatalf("%d files after recovering, want 3", len(files))
	}
	clk.waiting(t) // Run waits for its next tick: cancel it there
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestNewScheduleRefuses(t *testing.T) {
	take := func(context.Context) (*Snapshot, error) { return sample(), nil }
	for name, cfg := range map[string]ScheduleConfig{
		"no dir":      {Interval: time.Hour, Take: take},
		"no interval": {Dir: "x", Take: take},
		"no take":     {Dir: "x", Interval: time.Hour},
	} {
		if _, err := NewSchedule(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
