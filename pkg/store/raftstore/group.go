package raftstore

// Group commit: when many proposals are in flight, a leader whose loop turns faster than they
// arrive carries a few writes per fdatasync, and every Ready costs the three members a log
// write, a sync and a round of messages whatever it carries. So after a Ready the leader may
// hold the next one back, for up to Config.GroupCommitDelay, until more proposals are in: a
// quarter of those in flight. PostgreSQL's commit_delay with commit_siblings is the same idea.
//
// Proposals in flight are not all about to arrive: a write already in the log waits for its
// commit, which the held Ready carries, and its client proposes again only after it. When the
// proposals in flight are all of that kind (a few clients, each with one write at a time) a
// hold only times out; so a hold that timed out makes the leader skip the next holds, twice
// as many after each further timeout, and one that filled resets that.

const (
	// groupSiblings is how many proposals must be in flight for a hold at all: a lone
	// writer, or a few, pay nothing.
	groupSiblings = 32
	// groupMaxSkip bounds how many Readies are let through without a hold after timeouts.
	groupMaxSkip = 64
)

// groupCommit is the raft loop's group-commit state. Only the loop uses it.
type groupCommit struct {
	want    uint64 // while holding: the proposal count that ends the hold
	skip    int    // Readies still to let through without holding
	backoff int    // skip set by the next timeout
}

// hold decides after a leader's Ready whether to hold the next one: inflight proposals wait
// for an outcome, before is the count of accepted proposals when the Ready was taken, proposed
// the count now.
func (g *groupCommit) hold(inflight int64, before, proposed uint64) bool {
	if g.skip > 0 {
		g.skip--
		return false
	}
	if inflight < groupSiblings {
		return false
	}
	g.want = before + uint64(inflight/4)
	return proposed < g.want
}

// arrived reports whether the proposals counted so far end the hold (it filled).
func (g *groupCommit) arrived(proposed uint64) bool {
	if proposed < g.want {
		return false
	}
	g.backoff = 0
	return true
}

// timedOut records a hold that ended on the delay: the next holds are skipped.
func (g *groupCommit) timedOut() {
	g.backoff = min(max(1, 2*g.backoff), groupMaxSkip)
	g.skip = g.backoff
}
