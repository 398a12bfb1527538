package mongo

import (
	"fmt"
	"sort"
)

// maxVoters is mongod's limit on voting members.
const maxVoters = 7

// Target is one desired member.
type Target struct {
	Name     string // "<svc>-<i>"
	Host     string // "host:port" as the config names it
	Priority float64
	Ready    bool
}

// ConfigMember is the part of a config member the planner decides on.
type ConfigMember struct {
	ID       int64
	Host     string
	Votes    int64
	Priority float64
}

// StepKind is what one step does.
type StepKind string

// Step kinds.
const (
	StepNone     StepKind = "none"
	StepAdd      StepKind = "add"
	StepRemove   StepKind = "remove"
	StepChange   StepKind = "change"   // set one member's votes and priority
	StepStepDown StepKind = "stepDown" // the primary must step down before the change
)

// Step is the next single change to the config.
type Step struct {
	Kind     StepKind
	Host     string
	ID       int64 // for add: the new member's _id
	Votes    int64
	Priority float64
	// Reason says why, for logs and conditions.
	Reason string
}

// Plan returns the next single step from the config members cur toward targets, with primary
// the host of the current primary. Members are added only when Ready and removed only when no
// longer desired (a member whose node is down stays in the config). The voters are the first k
// members, in target order, of those in the config or Ready, with k the largest odd number not
// above their count and 7; the others get votes 0, priority 0. Each step changes at most one
// member, so at most one vote (mongod's rule for a non-force reconfig). Order: removals
// (non-voters first), demotions, additions, then other vote and priority changes.
func Plan(cur []ConfigMember, targets []Target, primary string) Step {
	inCur := map[string]ConfigMember{}
	var maxID int64 = -1
	for _, m := range cur {
		inCur[m.Host] = m
		maxID = max(maxID, m.ID)
	}
	wantVotes, wantPrio := desiredVotes(cur, targets)
	isTarget := map[string]bool{}
	for _, t := range targets {
		isTarget[t.Host] = true
	}

	// 1. Remove members that are no longer desired, non-voters first, then the highest _id.
	var gone []ConfigMember
	for _, m := range cur {
		if !isTarget[m.Host] {
			gone = append(gone, m)
		}
	}
	sort.Slice(gone, func(i, j int) bool {
		if gone[i].Votes != gone[j].Votes {
			return gone[i].Votes < gone[j].Votes
		}
		return gone[i].ID > gone[j].ID
	})
	for _, m := range gone {
		if !leavesElectable(cur, m.Host, 0, 0, true) {
			continue
		}
		if m.Host == primary {
			return Step{Kind: StepStepDown, Host: m.Host, Reason: fmt.Sprintf("%s is primary and is to be removed", m.Host)}
		}
		return Step{Kind: StepRemove, Host: m.Host, Reason: fmt.Sprintf("%s is no longer a member", m.Host)}
	}
	// 2. Demote voters that should not vote.
	for _, t := range targets {
		m, ok := inCur[t.Host]
		if !ok || m.Votes == 0 || wantVotes[t.Host] == 1 {
			continue
		}
		if t.Host == primary {
			return Step{Kind: StepStepDown, Host: t.Host, Reason: fmt.Sprintf("%s is primary and is to lose its vote", t.Host)}
		}
		return Step{Kind: StepChange, Host: t.Host, Votes: 0, Priority: 0, Reason: fmt.Sprintf("%s: votes 1 -> 0 to keep the voters odd and at most %d", t.Host, maxVoters)}
	}
	// 3. Add Ready members.
	for _, t := range targets {
		if _, ok := inCur[t.Host]; ok || !t.Ready {
			continue
		}
		return Step{Kind: StepAdd, Host: t.Host, ID: maxID + 1, Votes: wantVotes[t.Host], Priority: wantPrio[t.Host],
			Reason: fmt.Sprintf("add %s (votes %d, priority %g)", t.Host, wantVotes[t.Host], wantPrio[t.Host])}
	}
	// 4. Other vote and priority changes.
	for _, t := range targets {
		m, ok := inCur[t.Host]
		if !ok || (m.Votes == wantVotes[t.Host] && m.Priority == wantPrio[t.Host]) {
			continue
		}
		if t.Host == primary && wantPrio[t.Host] == 0 {
			return Step{Kind: StepStepDown, Host: t.Host, Reason: fmt.Sprintf("%s is primary and is to become unelectable", t.Host)}
		}
		if !leavesElectable(cur, t.Host, wantVotes[t.Host], wantPrio[t.Host], false) {
			continue
		}
		return Step{Kind: StepChange, Host: t.Host, Votes: wantVotes[t.Host], Priority: wantPrio[t.Host],
			Reason: fmt.Sprintf("%s: votes %d -> %d, priority %g -> %g", t.Host, m.Votes, wantVotes[t.Host], m.Priority, wantPrio[t.Host])}
	}
	return Step{Kind: StepNone}
}

// desiredVotes gives every target in the config or Ready its votes and priority.
func desiredVotes(cur []ConfigMember, targets []Target) (map[string]int64, map[string]float64) {
	inCur := map[string]bool{}
	for _, m := range cur {
		inCur[m.Host] = true
	}
	var eligible []Target
	for _, t := range targets {
		if inCur[t.Host] || t.Ready {
			eligible = append(eligible, t)
		}
	}
	k := VoterCount(len(eligible))
	votes, prio := map[string]int64{}, map[string]float64{}
	for i, t := range eligible {
		if i < k {
			votes[t.Host], prio[t.Host] = 1, t.Priority
		} else {
			votes[t.Host], prio[t.Host] = 0, 0
		}
	}
	return votes, prio
}

// VoterCount is how many of n members vote: the largest odd number ≤ min(n, 7).
func VoterCount(n int) int {
	k := min(n, maxVoters)
	if k > 0 && k%2 == 0 {
		k--
	}
	return k
}

// leavesElectable: after setting host's votes/priority (or removing it) some voter with
// priority > 0 remains; mongod rejects a config without one.
func leavesElectable(cur []ConfigMember, host string, votes int64, prio float64, remove bool) bool {
	for _, m := range cur {
		if m.Host == host {
			if remove {
				continue
			}
			m.Votes, m.Priority = votes, prio
		}
		if m.Votes == 1 && m.Priority > 0 {
			return true
		}
	}
	return false
}

// Survivors is the config a forced reconfig installs: the members of cur that are alive, with
// votes recomputed over them in targets order.
func Survivors(cur []ConfigMember, targets []Target, alive map[string]bool) []ConfigMember {
	var keep []Target
	byHost := map[string]ConfigMember{}
	for _, m := range cur {
		byHost[m.Host] = m
	}
	for _, t := range targets {
		if _, ok := byHost[t.Host]; ok && alive[t.Host] {
			keep = append(keep, t)
		}
	}
	k := VoterCount(len(keep))
	var out []ConfigMember
	for i, t := range keep {
		m := byHost[t.Host]
		if i < k {
			m.Votes, m.Priority = 1, t.Priority
		} else {
			m.Votes, m.Priority = 0, 0
		}
		out = append(out, m)
	}
	return out
}
