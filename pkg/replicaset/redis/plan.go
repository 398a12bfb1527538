package redis

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// memberView is what one reconcile read from one data member.
type memberView struct {
	Name      string
	Index     int
	Host      string // the announced name (Member.Host)
	Port      int
	DialHost  string // the host part of Member.Dial, which Sentinel may report instead
	Ready     bool   // the replica runs and its node is alive (from the controller)
	Draining  bool
	EmptyData bool // from the controller: the member's volume was created empty

	Reachable  bool
	Role       string // "master", "slave", "" when unreachable
	MasterHost string // a replica's master
	MasterPort int
	LinkUp     bool  // a replica's link to its master is up ("connected")
	Offset     int64 // master_repl_offset (master) or the replica's processed offset
	Keys       int64 // DBSIZE
}

// empty reports whether the member holds no data: marked so by the controller, or holding no
// key and no replication history.
func (m *memberView) empty() bool { return m.EmptyData || (m.Keys == 0 && m.Offset == 0) }

// sentinelView is what one reconcile read from one sentinel.
type sentinelView struct {
	Name       string
	Host       string
	Port       int
	Ready      bool
	Reachable  bool
	Monitoring bool   // the sentinel monitors the master name
	MasterHost string // SENTINEL GET-MASTER-ADDR-BY-NAME
	MasterPort int
	Flags      string // SENTINEL MASTER flags ("master", "s_down,master", "...failover_in_progress")
	// Replicas and Sentinels are the addresses ("host:port") the sentinel remembers.
	Replicas  []string
	Sentinels []string
}

// stepKind is one thing a reconcile does to the topology.
type stepKind int

const (
	stepPromote   stepKind = iota // REPLICAOF NO ONE on Member (cold start only)
	stepReplicaOf                 // REPLICAOF Master on Member (cold start only)
	stepMonitor                   // SENTINEL MONITOR Master on Sentinel
	stepReset                     // SENTINEL RESET on Sentinel
	stepFailover                  // SENTINEL FAILOVER through Sentinel (planned move)
)

type step struct {
	Kind     stepKind
	Member   int // index into members
	Master   int // index into members
	Sentinel int // index into sentinels
	Why      string
}

// mode names why the plan looks the way it does (the PrimaryAgreed condition's reason).
type mode string

const (
	modeAgreed            mode = "Agreed"            // a Sentinel majority and the master's ROLE agree
	modeRoleMismatch      mode = "RoleMismatch"      // the Sentinel majority names a member whose ROLE is not master (failover pending)
	modeSentinelsSplit    mode = "SentinelsDisagree" // sentinels monitor, but no majority names one member
	modeNoQuorum          mode = "NoSentinelQuorum"  // fewer than a majority of sentinels answer
	modeColdStart         mode = "ColdStart"         // no sentinel monitors the set: the controller picked the master
	modeWaitingMembers    mode = "WaitingForMembers" // cold start, but members it must see first are not reachable
	modeNoMembers         mode = "NoMembers"
	modeNoSentinels       mode = "NoSentinels"
	modeUnknownMaster     mode = "UnknownMaster" // the Sentinel majority names an address that is no member
	modeFailoverRequested mode = "FailoverRequested"
)

type planInput struct {
	Members     []memberView
	Sentinels   []sentinelView
	LastPrimary string
	Now         time.Time
	// LastReset and LastFailover are when this engine last reset a sentinel / asked for a
	// failover; ResetInterval and FailoverInterval space them.
	LastReset        time.Time
	ResetInterval    time.Duration
	LastFailover     time.Time
	FailoverInterval time.Duration
}

type planOutput struct {
	Primary int // index into members, -1 when none
	Agreed  bool
	Mode    mode
	Message string
	Steps   []step
}

func majority(n int) int { return n/2 + 1 }

// addrKey is the canonical "host:port" of an address.
func addrKey(host string, port int) string {
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))
}

// memberAt maps an address Sentinel or a replica reported to a member: by its announced name or
// by the address the controller dials (Sentinel reports an IP when announce-hostnames is off).
func memberAt(ms []memberView, host string, port int) int {
	if host == "" {
		return -1
	}
	for i := range ms {
		if ms[i].Port != port {
			continue
		}
		if strings.EqualFold(ms[i].Host, host) || (ms[i].DialHost != "" && ms[i].DialHost == host) {
			return i
		}
	}
	return -1
}

// plan decides one reconcile step from what was read. It never picks a master while a Sentinel
// majority monitors the set; it picks one only when no sentinel monitors it at all (first boot,
// or every sentinel lost its state) and a majority of sentinels answer, so that the MONITOR it
// sends reaches a majority.
func plan(in planInput) planOutput {
	out := planOutput{Primary: -1}
	if len(in.Members) == 0 {
		out.Mode, out.Message = modeNoMembers, "no member replicas"
		return out
	}
	if len(in.Sentinels) == 0 {
		out.Mode, out.Message = modeNoSentinels, "no sentinel replicas yet"
		return out
	}
	need := majority(len(in.Sentinels))
	reachable, monitoring := 0, 0
	votes := make([]int, len(in.Members))
	unknownVotes := map[string]int{}
	for _, s := range in.Sentinels {
		if !s.Reachable {
			continue
		}
		reachable++
		if !s.Monitoring {
			continue
		}
		monitoring++
		if i := memberAt(in.Members, s.MasterHost, s.MasterPort); i >= 0 {
			votes[i]++
		} else {
			unknownVotes[addrKey(s.MasterHost, s.MasterPort)]++
		}
	}
	best, bestVotes := -1, 0
	for i, v := range votes {
		if v > bestVotes {
			best, bestVotes = i, v
		}
	}

	switch {
	case bestVotes >= need:
		out.Primary = best
		m := &in.Members[best]
		out.Agreed = m.Reachable && m.Role == "master"
		if !out.Agreed {
			out.Mode = modeRoleMismatch
			out.Message = fmt.Sprintf("%d of %d sentinels name %s, whose own role is %q", bestVotes, len(in.Sentinels), m.Name, roleOrUnreachable(m))
			return out
		}
		out.Mode = modeAgreed
		out.Message = fmt.Sprintf("%d of %d sentinels and its own ROLE name %s", bestVotes, len(in.Sentinels), m.Name)
		// A sentinel that came back without state learns the agreed master.
		for si, s := range in.Sentinels {
			if s.Reachable && !s.Monitoring {
				out.Steps = append(out.Steps, step{Kind: stepMonitor, Sentinel: si, Master: best, Why: "sentinel does not monitor the set"})
			}
		}
		if len(out.Steps) > 0 {
			return out
		}
		if st, ok := planFailover(in, best); ok {
			out.Steps = append(out.Steps, st)
			out.Mode = modeFailoverRequested
			return out
		}
		if st, ok := planReset(in); ok {
			out.Steps = append(out.Steps, st)
		}
		return out

	case monitoring == 0 && reachable >= need:
		return planColdStart(in)

	case reachable < need:
		out.Primary = best
		out.Mode = modeNoQuorum
		out.Message = fmt.Sprintf("%d of %d sentinels answer, %d needed", reachable, len(in.Sentinels), need)
		return out

	default:
		// Sentinels monitor the set but no majority names one member: a failover in flight, or
		// sentinels that restarted without state. The latter learn the master the monitoring
		// ones agree on, when that member itself says it is master.
		out.Primary = best
		if bestVotes == monitoring && best >= 0 {
			m := &in.Members[best]
			if m.Reachable && m.Role == "master" {
				for si, s := range in.Sentinels {
					if s.Reachable && !s.Monitoring {
						out.Steps = append(out.Steps, step{Kind: stepMonitor, Sentinel: si, Master: best, Why: "sentinel does not monitor the set"})
					}
				}
			}
		}
		if len(unknownVotes) > 0 && bestVotes == 0 {
			out.Mode = modeUnknownMaster
			out.Message = fmt.Sprintf("sentinels name %s, which is no member", joinKeys(unknownVotes))
			return out
		}
		out.Mode = modeSentinelsSplit
		out.Message = fmt.Sprintf("%d of %d sentinels monitor the set, at most %d agree, %d needed", monitoring, len(in.Sentinels), bestVotes, need)
		return out
	}
}

func roleOrUnreachable(m *memberView) string {
	if !m.Reachable {
		return "unreachable"
	}
	return m.Role
}

func joinKeys(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	// deterministic for messages
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return strings.Join(ks, ", ")
}

// planColdStart picks the master when no sentinel knows the set, in this order: a sole master
// every other reachable member already replicates from (nothing to change, nothing lost); the
// last recorded primary if it answers; the member with the highest replication offset. A member
// without data never wins while another has data. On first creation (no recorded primary) it
// waits for every member, so that index 0 is the master of a fresh set.
func planColdStart(in planInput) planOutput {
	out := planOutput{Primary: -1, Mode: modeColdStart}
	last := -1
	for i := range in.Members {
		if in.Members[i].Name == in.LastPrimary && in.LastPrimary != "" {
			last = i
		}
	}
	var waiting []string
	for i := range in.Members {
		m := &in.Members[i]
		switch {
		case in.LastPrimary == "" && !m.Reachable:
			waiting = append(waiting, m.Name) // first creation: every member, so index 0 wins
		case i == last && m.Ready && !m.Reachable:
			waiting = append(waiting, m.Name) // the last primary runs but does not answer yet
		}
	}
	if len(waiting) > 0 {
		out.Mode = modeWaitingMembers
		out.Message = "no sentinel monitors the set; waiting for " + strings.Join(waiting, ", ")
		return out
	}
	hasData := false
	for i := range in.Members {
		if in.Members[i].Reachable && !in.Members[i].empty() {
			hasData = true
		}
	}
	eligible := func(m *memberView) bool { return m.Reachable && (!hasData || !m.empty()) }

	pick, why := -1, ""
	// 1. A sole master that every other reachable member follows.
	sole := -1
	for i := range in.Members {
		if in.Members[i].Reachable && in.Members[i].Role == "master" {
			if sole >= 0 {
				sole = -2
				break
			}
			if sole == -1 {
				sole = i
			}
		}
	}
	if sole >= 0 && eligible(&in.Members[sole]) {
		follows := 0
		for i := range in.Members {
			m := &in.Members[i]
			if i != sole && m.Reachable && m.Role == "slave" && memberAt(in.Members, m.MasterHost, m.MasterPort) == sole {
				follows++
			}
		}
		reach := 0
		for i := range in.Members {
			if in.Members[i].Reachable {
				reach++
			}
		}
		if follows == reach-1 && follows > 0 {
			pick, why = sole, "the master every reachable member replicates from"
		}
	}
	// 2. The last recorded primary.
	if pick < 0 && last >= 0 && eligible(&in.Members[last]) {
		pick, why = last, "the last recorded primary"
	}
	// 3. The highest offset; ties go to the lowest index.
	if pick < 0 {
		for i := range in.Members {
			m := &in.Members[i]
			if !eligible(m) {
				continue
			}
			if pick < 0 || m.Offset > in.Members[pick].Offset {
				pick = i
			}
		}
		if pick >= 0 {
			why = "the highest replication offset"
			if !hasData {
				why = "a fresh set: the lowest index"
			}
		}
	}
	if pick < 0 {
		out.Mode = modeWaitingMembers
		out.Message = "no sentinel monitors the set and no member answers"
		return out
	}
	out.Primary = pick
	out.Message = fmt.Sprintf("no sentinel monitors the set; master %s (%s)", in.Members[pick].Name, why)
	p := &in.Members[pick]
	if p.Role != "master" {
		out.Steps = append(out.Steps, step{Kind: stepPromote, Member: pick, Why: why})
	}
	for i := range in.Members {
		m := &in.Members[i]
		if i == pick || !m.Reachable {
			continue
		}
		if m.Role == "slave" && memberAt(in.Members, m.MasterHost, m.MasterPort) == pick {
			continue
		}
		out.Steps = append(out.Steps, step{Kind: stepReplicaOf, Member: i, Master: pick, Why: "cold start"})
	}
	for si, s := range in.Sentinels {
		if s.Reachable {
			out.Steps = append(out.Steps, step{Kind: stepMonitor, Sentinel: si, Master: pick, Why: "cold start"})
		}
	}
	return out
}

// planFailover asks Sentinel to move the master off a draining member, when a replica is
// there to take over and no failover is in flight or was asked for recently.
func planFailover(in planInput, master int) (step, bool) {
	if !in.Members[master].Draining {
		return step{}, false
	}
	if !in.LastFailover.IsZero() && in.Now.Sub(in.LastFailover) < in.FailoverInterval {
		return step{}, false
	}
	candidate := false
	for i := range in.Members {
		m := &in.Members[i]
		if i != master && !m.Draining && m.Reachable && m.Role == "slave" && m.LinkUp &&
			memberAt(in.Members, m.MasterHost, m.MasterPort) == master {
			candidate = true
		}
	}
	if !candidate {
		return step{}, false
	}
	for si, s := range in.Sentinels {
		if s.Reachable && s.Monitoring && !strings.Contains(s.Flags, "failover_in_progress") &&
			memberAt(in.Members, s.MasterHost, s.MasterPort) == master {
			return step{Kind: stepFailover, Sentinel: si, Master: master, Why: in.Members[master].Name + " is draining"}, true
		}
	}
	return step{}, false
}

// planReset picks one sentinel that remembers a replica or a sentinel that is no longer in the
// set (Sentinel never forgets them by itself), at most one every ResetInterval.
func planReset(in planInput) (step, bool) {
	if !in.LastReset.IsZero() && in.Now.Sub(in.LastReset) < in.ResetInterval {
		return step{}, false
	}
	members := map[string]bool{}
	for _, m := range in.Members {
		members[addrKey(m.Host, m.Port)] = true
		if m.DialHost != "" {
			members[addrKey(m.DialHost, m.Port)] = true
		}
	}
	sentinels := map[string]bool{}
	for _, s := range in.Sentinels {
		sentinels[addrKey(s.Host, s.Port)] = true
	}
	for si, s := range in.Sentinels {
		if !s.Reachable || !s.Monitoring || strings.Contains(s.Flags, "failover_in_progress") {
			continue
		}
		for _, r := range s.Replicas {
			if !members[strings.ToLower(r)] {
				return step{Kind: stepReset, Sentinel: si, Why: "remembers replica " + r + ", which is no member"}, true
			}
		}
		seen := map[string]bool{}
		for _, o := range s.Sentinels {
			k := strings.ToLower(o)
			if !sentinels[k] {
				return step{Kind: stepReset, Sentinel: si, Why: "remembers sentinel " + o + ", which is not in the set"}, true
			}
			if seen[k] {
				return step{Kind: stepReset, Sentinel: si, Why: "remembers sentinel " + o + " twice (restarted with a new id)"}, true
			}
			seen[k] = true
		}
	}
	return step{}, false
}
