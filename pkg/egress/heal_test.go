package egress

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestHealerEscalation is the table of the escalation state machine: a sequence of events
// (probe results, time passing, steps taken) and the step asked for after each.
func TestHealerEscalation(t *testing.T) {
	type ev struct {
		ok      *bool         // a probe result
		advance time.Duration // time passes
		want    StepKind      // Next() after the event; the step is then taken
		sick    bool          // Healthy() is false after the event
	}
	ok, bad := true, false
	pass, fail := &ok, &bad
	settle := 10 * time.Second
	cases := []struct {
		name      string
		reconnect bool
		events    []ev
	}{
		{"below threshold nothing happens", true, []ev{
			{ok: fail}, {ok: fail}, {ok: pass}, {ok: fail},
		}},
		{"reconnect then restart then restart with backoff then give up", true, []ev{
			{ok: fail}, {ok: fail},
			{ok: fail, want: StepReconnect, sick: true},
			{ok: fail, sick: true}, // settling
			{advance: settle - time.Second, sick: true},
			{advance: time.Second, want: StepRestart, sick: true},
			{advance: settle - time.Millisecond, sick: true}, // settle after restart 1
			{advance: time.Millisecond, want: StepRestart, sick: true},
			{advance: 2*settle - time.Millisecond, sick: true}, // backoff doubled
			{advance: time.Millisecond, want: StepFailed, sick: true},
			{advance: time.Hour, sick: true},           // never a hot loop
			{ok: fail, advance: time.Hour, sick: true}, // nor with more failures
		}},
		{"no reconnect hook starts with a restart", false, []ev{
			{ok: fail}, {ok: fail},
			{ok: fail, want: StepRestart, sick: true},
		}},
		{"recovery resets the episode", true, []ev{
			{ok: fail}, {ok: fail},
			{ok: fail, want: StepReconnect, sick: true},
			{advance: settle, want: StepRestart, sick: true},
			{ok: pass},
			{ok: fail}, {ok: fail},
			{ok: fail, want: StepReconnect, sick: true}, // from the first step again
		}},
		{"a pass while settling ends it", true, []ev{
			{ok: fail}, {ok: fail},
			{ok: fail, want: StepReconnect, sick: true},
			{ok: pass},
			{advance: time.Hour},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
			h := NewHealer(Policy{Threshold: 3, Settle: settle, MaxRestarts: 2, Reconnect: c.reconnect})
			for i, e := range c.events {
				clk.Step(e.advance)
				if e.ok != nil {
					h.Observe(Result{OK: *e.ok})
				}
				if h.Healthy() == e.sick {
					t.Fatalf("event %d: healthy %v, want %v", i, h.Healthy(), !e.sick)
				}
				got, _ := h.Next(clk.Now())
				if got != e.want {
					t.Fatalf("event %d: step %s, want %s", i, got, e.want)
				}
				if got != StepNone {
					h.Took(got, clk.Now())
				}
			}
		})
	}
}

func TestHealerWaitIsTheSettleLeft(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealer(Policy{Threshold: 1, Settle: 10 * time.Second, Reconnect: true})
	h.Observe(Result{})
	step, _ := h.Next(now)
	h.Took(step, now)
	if step, wait := h.Next(now.Add(4 * time.Second)); step != StepNone || wait != 6*time.Second {
		t.Fatalf("got %s %s", step, wait)
	}
	if !h.Probed() || h.Failed() {
		t.Fatal("probed/failed")
	}
}
