package doctor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Answer is what one node answered `ctl doctor` (or why it did not).
type Answer struct {
	Node string
	Diag *nodeapi.Diagnostics // nil when Err is set
	Err  error
	// Sent and Received frame the request on the asking side's clock: the node's clock read
	// Diag.Time somewhere between them.
	Sent, Received time.Time
}

// Clock skew thresholds between members: leases and certificate checks tolerate a second or
// so; beyond 5s lease holders and followers disagree about expiry.
const (
	SkewWarn = time.Second
	SkewFail = 5 * time.Second
)

// Reachable is the check of one node that did or did not answer.
func Reachable(a Answer) nodeapi.Check {
	const name = "reachable"
	if a.Err != nil {
		return check(name, Fail, fmt.Sprintf("no diagnostics: %v", a.Err),
			"the node's agent is down or its API cannot be reached from the agent ctl talks to: check the agent (systemctl status constellation-agent) and the network")
	}
	return check(name, OK, fmt.Sprintf("answered in %s (agent %s)", a.Received.Sub(a.Sent).Round(time.Millisecond), a.Diag.Version), "")
}

// offset estimates a node's clock minus the asker's, and its uncertainty (half the round trip).
func offset(a Answer) (time.Duration, time.Duration) {
	rtt := a.Received.Sub(a.Sent)
	mid := a.Sent.Add(rtt / 2)
	return a.Diag.Time.Sub(mid), rtt / 2
}

// ClockSkew judges the spread of the members' clocks, from the time each reported against the
// asker's clock (half the round trip is the error bar, subtracted before judging).
func ClockSkew(answers []Answer) nodeapi.Check {
	const name = "clock skew"
	type sample struct {
		node     string
		off, unc time.Duration
	}
	var ss []sample
	for _, a := range answers {
		if a.Err != nil || a.Diag == nil || a.Diag.Time.IsZero() {
			continue
		}
		off, unc := offset(a)
		ss = append(ss, sample{a.Node, off, unc})
	}
	if len(ss) < 2 {
		return check(name, OK, fmt.Sprintf("%d member answered: nothing to compare", len(ss)), "")
	}
	lo, hi := ss[0], ss[0]
	for _, s := range ss[1:] {
		if s.off < lo.off {
			lo = s
		}
		if s.off > hi.off {
			hi = s
		}
	}
	spread := hi.off - lo.off
	unc := hi.unc + lo.unc
	judged := max(spread-unc, 0)
	msg := fmt.Sprintf("%s between %s and %s (±%s)", spread.Round(time.Millisecond), hi.node, lo.node, unc.Round(time.Millisecond))
	hint := "synchronise the nodes' clocks (chrony or systemd-timesyncd; timedatectl shows whether NTP is on)"
	switch {
	case judged >= SkewFail:
		return check(name, Fail, msg, hint+": leases and certificate checks misbehave")
	case judged >= SkewWarn:
		return check(name, Warn, msg, hint)
	}
	return check(name, OK, msg, "")
}

// voterSet is the voters most answering members report (the committed configuration; a node
// that lags may report an older one).
func voterSet(answers []Answer) []string {
	count := map[string]int{}
	sets := map[string][]string{}
	for _, a := range answers {
		if a.Err != nil || a.Diag == nil || a.Diag.Raft == nil {
			continue
		}
		vs := append([]string(nil), a.Diag.Raft.Voters...)
		sort.Strings(vs)
		k := strings.Join(vs, ",")
		count[k]++
		sets[k] = vs
	}
	best, bestN := "", 0
	for k, n := range count {
		if n > bestN || (n == bestN && k < best) {
			best, bestN = k, n
		}
	}
	return sets[best]
}

// Quorum judges whether a majority of the voters answer and agree on one leader; and the
// voter count against "quorum needs three".
func Quorum(answers []Answer) []nodeapi.Check {
	voters := voterSet(answers)
	if len(voters) == 0 {
		return []nodeapi.Check{
			check("quorum", Warn, "no member reports raft (in-memory store, or none answered)", "run the agents without --store.memory"),
		}
	}
	byNode := map[string]Answer{}
	for _, a := range answers {
		byNode[a.Node] = a
	}
	leaders := map[string]int{}
	var down []string
	for _, v := range voters {
		a, ok := byNode[v]
		if !ok || a.Err != nil || a.Diag == nil || a.Diag.Raft == nil {
			down = append(down, v)
			continue
		}
		if l := a.Diag.Raft.Leader; l != "" {
			leaders[l]++
		}
	}
	need := len(voters)/2 + 1
	leader, n := "", 0
	for l, c := range leaders {
		if c > n || (c == n && l < leader) {
			leader, n = l, c
		}
	}
	var q nodeapi.Check
	switch {
	case n >= need:
		msg := fmt.Sprintf("leader %s, seen by %d of %d voters (%d needed)", leader, n, len(voters), need)
		if len(down) > 0 {
			msg += "; not answering: " + strings.Join(down, ", ")
		}
		q = check("quorum", OK, msg, "")
	default:
		msg := fmt.Sprintf("no leader seen by a majority: %d of %d voters agree (%d needed)", n, len(voters), need)
		if len(down) > 0 {
			msg += "; not answering: " + strings.Join(down, ", ")
		}
		q = check("quorum", Fail, msg,
			"changes are refused until a majority of voters is back (traffic keeps flowing): bring the voters listed back, or recover from a snapshot (docs/store.md)")
	}
	return []nodeapi.Check{q, Voters(voters)}
}

// Voters judges the voter count: one or two (or an even number) do not survive the loss of a
// voter the way three or five do.
func Voters(voters []string) nodeapi.Check {
	const name = "voters"
	n := len(voters)
	msg := fmt.Sprintf("%d (%s)", n, strings.Join(voters, ", "))
	hint := "quorum needs three: add nodes until three or five are voters (they are promoted automatically)"
	switch {
	case n == 1:
		return check(name, Warn, msg+": losing it stops changes", hint)
	case n%2 == 0:
		return check(name, Warn, msg+fmt.Sprintf(": survives the loss of %d, like %d would", (n-1)/2, n-1), hint)
	}
	return check(name, OK, msg+fmt.Sprintf(": survives the loss of %d", (n-1)/2), "")
}

// GossipKeys judges whether every answering member encrypts gossip with the same primary key.
func GossipKeys(answers []Answer) nodeapi.Check {
	const name = "gossip key"
	byKey := map[string][]string{}
	for _, a := range answers {
		if a.Err != nil || a.Diag == nil {
			continue
		}
		k := a.Diag.Gossip.PrimaryKey
		if k == "" {
			k = "(unencrypted)"
		}
		byKey[k] = append(byKey[k], a.Node)
	}
	if len(byKey) == 0 {
		return check(name, Warn, "no member answered", "")
	}
	var parts []string
	for k, ns := range byKey {
		sort.Strings(ns)
		parts = append(parts, fmt.Sprintf("%s on %s", k, strings.Join(ns, ",")))
	}
	sort.Strings(parts)
	if len(byKey) > 1 {
		return check(name, Fail, "members disagree: "+strings.Join(parts, "; "),
			"members with another key cannot talk: finish the rotation (ctl cluster rotate-gossip-key) or restart the odd node so it fetches the keyring")
	}
	return check(name, OK, "all members use "+strings.Join(parts, ""), "")
}

// GossipMembership judges whether every answering member sees every node alive.
func GossipMembership(answers []Answer, nodes []string) nodeapi.Check {
	const name = "gossip members"
	var problems []string
	seen := 0
	for _, a := range answers {
		if a.Err != nil || a.Diag == nil {
			continue
		}
		seen++
		alive := map[string]bool{}
		for _, n := range a.Diag.Gossip.Alive {
			alive[n] = true
		}
		var miss []string
		for _, n := range nodes {
			if !alive[n] {
				miss = append(miss, n)
			}
		}
		if len(miss) > 0 {
			problems = append(problems, fmt.Sprintf("%s does not see %s", a.Node, strings.Join(miss, ",")))
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		return check(name, Warn, strings.Join(problems, "; "),
			"a node unseen by everyone is down; one unseen by some is cut off on the gossip port (TCP and UDP) between them")
	}
	return check(name, OK, fmt.Sprintf("%d answering members each see all %d nodes", seen, len(nodes)), "")
}

// Cluster runs every cluster-wide check over the answers.
func Cluster(answers []Answer, nodes []string) []nodeapi.Check {
	out := Quorum(answers)
	out = append(out, ClockSkew(answers), GossipKeys(answers), GossipMembership(answers, nodes))
	return out
}
