package mongo

import (
	"errors"
	"fmt"
	"testing"

	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
)

func tg(hosts ...string) []Target {
	var ts []Target
	for _, h := range hosts {
		ts = append(ts, Target{Name: h, Host: h, Priority: 1, Ready: true})
	}
	return ts
}

func cm(id int64, host string, votes int64, prio float64) ConfigMember {
	return ConfigMember{ID: id, Host: host, Votes: votes, Priority: prio}
}

func voters(n int) []ConfigMember {
	var ms []ConfigMember
	for i := range n {
		ms = append(ms, cm(int64(i), string(rune('a'+i)), 1, 1))
	}
	return ms
}

func TestPlan(t *testing.T) {
	notReady := func(ts []Target, host string) []Target {
		for i := range ts {
			if ts[i].Host == host {
				ts[i].Ready = false
			}
		}
		return ts
	}
	withPrio := func(ts []Target, host string, p float64) []Target {
		for i := range ts {
			if ts[i].Host == host {
				ts[i].Priority = p
			}
		}
		return ts
	}
	for _, tc := range []struct {
		name    string
		cur     []ConfigMember
		targets []Target
		primary string
		want    Step
	}{
		{"converged single", voters(1), tg("a"), "a", Step{Kind: StepNone}},
		{"1 -> 2: the second does not vote", voters(1), tg("a", "b"), "a", Step{Kind: StepAdd, Host: "b", ID: 1, Votes: 0, Priority: 0}},
		{"1 -> 3: add a voter", voters(1), tg("a", "b", "c"), "a", Step{Kind: StepAdd, Host: "b", ID: 1, Votes: 1, Priority: 1}},
		{"2 -> 3: add the third voter", voters(2), tg("a", "b", "c"), "a", Step{Kind: StepAdd, Host: "c", ID: 2, Votes: 1, Priority: 1}},
		{"a non-voting second becomes a voter once a third is in", []ConfigMember{cm(0, "a", 1, 1), cm(1, "b", 0, 0), cm(2, "c", 1, 1)}, tg("a", "b", "c"), "a",
			Step{Kind: StepChange, Host: "b", Votes: 1, Priority: 1}},
		{"3 -> 4: the fourth does not vote", voters(3), tg("a", "b", "c", "d"), "a", Step{Kind: StepAdd, Host: "d", ID: 3, Votes: 0, Priority: 0}},
		{"4 -> 5: add the fifth as a voter first", append(voters(3), cm(3, "d", 0, 0)), tg("a", "b", "c", "d", "e"), "a", Step{Kind: StepAdd, Host: "e", ID: 4, Votes: 1, Priority: 1}},
		{"4 -> 5: then the fourth votes", append(voters(3), cm(3, "d", 0, 0), cm(4, "e", 1, 1)), tg("a", "b", "c", "d", "e"), "a", Step{Kind: StepChange, Host: "d", Votes: 1, Priority: 1}},
		{"5 -> 4: remove e", voters(5), tg("a", "b", "c", "d"), "a", Step{Kind: StepRemove, Host: "e"}},
		{"5 -> 4: then d stops voting", voters(4), tg("a", "b", "c", "d"), "a", Step{Kind: StepChange, Host: "d", Votes: 0, Priority: 0}},
		{"non-voters are removed first", append(voters(3), cm(3, "d", 0, 0)), tg("b", "c"), "b", Step{Kind: StepRemove, Host: "d"}},
		{"then the highest _id voter", voters(3), tg("b"), "b", Step{Kind: StepRemove, Host: "c"}},
		{"the primary steps down before it is removed", voters(3), tg("b", "c"), "a", Step{Kind: StepStepDown, Host: "a"}},
		{"the primary steps down before it loses its vote", voters(4), tg("a", "b", "c", "d"), "d", Step{Kind: StepStepDown, Host: "d"}},
		{"the primary steps down before its priority becomes 0", voters(3), withPrio(tg("a", "b", "c"), "a", 0), "a", Step{Kind: StepStepDown, Host: "a"}},
		{"priority change", voters(3), withPrio(tg("a", "b", "c"), "b", 5), "a", Step{Kind: StepChange, Host: "b", Votes: 1, Priority: 5}},
		{"a member that is not ready is not added", voters(1), notReady(tg("a", "b", "c"), "b"), "a", Step{Kind: StepAdd, Host: "c", ID: 1, Votes: 0, Priority: 0}},
		{"a member that is not ready stays in the config", voters(3), notReady(tg("a", "b", "c"), "c"), "a", Step{Kind: StepNone}},
		{"the last electable member is never removed", voters(1), nil, "a", Step{Kind: StepNone}},
		{"at most 7 voters", voters(7), tg("a", "b", "c", "d", "e", "f", "g", "h", "i"), "a", Step{Kind: StepAdd, Host: "h", ID: 7, Votes: 0, Priority: 0}},
		{"a new member ahead in order takes a vote: demote first", append(voters(3)[:1], cm(2, "c", 1, 1), cm(3, "d", 1, 1)), tg("a", "b", "c", "d"), "a",
			Step{Kind: StepChange, Host: "d", Votes: 0, Priority: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.cur, tc.targets, tc.primary)
			got.Reason = ""
			if got != tc.want {
				t.Fatalf("Plan = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPlanConverges walks every scale from n to m (0 < n, m ≤ 9) step by step and checks each
// step changes at most one vote, the voters end odd and ≤ 7, and it ends.
func TestPlanConverges(t *testing.T) {
	hosts := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
	for n := 1; n <= 9; n++ {
		for m := 1; m <= 9; m++ {
			t.Run(fmt.Sprintf("%d->%d", n, m), func(t *testing.T) {
				cur := []ConfigMember{cm(0, "a", 1, 1)}
				primary := "a"
				walk := func(targets []Target) {
					for i := 0; ; i++ {
						if i > 40 {
							t.Fatalf("no convergence: %+v", cur)
						}
						st := Plan(cur, targets, primary)
						if st.Kind == StepNone {
							return
						}
						if st.Kind == StepStepDown {
							for _, c := range cur {
								if c.Host != primary && c.Votes == 1 && c.Priority > 0 {
									primary = c.Host
									break
								}
							}
							continue
						}
						next := applyStep(cur, st)
						if d := voteDiff(cur, next); d > 1 {
							t.Fatalf("step %+v changes %d votes", st, d)
						}
						cur = next
					}
				}
				walk(tg(hosts[:n]...))
				walk(tg(hosts[:m]...))
				if len(cur) != m {
					t.Fatalf("%d members, want %d: %+v", len(cur), m, cur)
				}
				if v := countVoters(cur); v != VoterCount(m) || v%2 == 0 || v > 7 {
					t.Fatalf("%d voters for %d members", v, m)
				}
			})
		}
	}
}

// voteDiff counts members whose vote differs between a and b (absent = no vote).
func voteDiff(a, b []ConfigMember) int {
	votes := map[string][2]int64{}
	for _, m := range a {
		v := votes[m.Host]
		v[0] = m.Votes
		votes[m.Host] = v
	}
	for _, m := range b {
		v := votes[m.Host]
		v[1] = m.Votes
		votes[m.Host] = v
	}
	n := 0
	for _, v := range votes {
		if v[0] != v[1] {
			n++
		}
	}
	return n
}

func TestVoterCount(t *testing.T) {
	for n, want := range []int{0, 1, 1, 3, 3, 5, 5, 7, 7, 7, 7} {
		if got := VoterCount(n); got != want {
			t.Errorf("VoterCount(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code      int32
		want      error
		transient bool
	}{
		{94, ErrNotInitialized, true},
		{10107, ErrNotPrimary, true},
		{109, ErrConfigInProgress, true},
		{308, ErrNotCommitted, true},
		{50, ErrNotCommitted, true},
		{93, ErrInvalidConfig, false},
		{74, ErrInvalidConfig, false},
		{103, ErrIncompatible, false},
		{262, ErrNoElectable, true},
	} {
		err := fmt.Errorf("run: %w", mongodrv.CommandError{Code: tc.code, Message: "m"})
		got, transient := classify(err)
		if !errors.Is(got, tc.want) || transient != tc.transient {
			t.Errorf("code %d: %v transient %v, want %v transient %v", tc.code, got, transient, tc.want, tc.transient)
		}
		if serverCode(got) != tc.code {
			t.Errorf("code %d lost in wrapping", tc.code)
		}
	}
	if got, transient := classify(errors.New("connection refused")); !errors.Is(got, ErrUnreachable) || !transient {
		t.Errorf("network error: %v %v", got, transient)
	}
}
