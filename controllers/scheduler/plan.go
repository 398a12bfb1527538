package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

type slot struct {
	a       v1.Assignment
	ready   bool
	current bool // runs the current spec on a node where it may stay
}

// Compute plans the placement of one Service: it drops replicas on lost nodes, places missing
// ones, scales down, spreads back, and takes one rolling-update step (as far as maxSurge and
// maxUnavailable allow). It is pure: same input, same plan.
//
// Replica indices are identities: a replacement takes the lowest free index, so during an update
// old and new replicas never share one (observed state is keyed by service and index), and after
// a start-first update the indices need not be 0..N-1.
func Compute(in Input) Plan {
	nodes := make(map[string]NodeInfo, len(in.Nodes))
	for _, n := range in.Nodes {
		nodes[n.Name] = n
	}
	matches := func(n NodeInfo) bool {
		for k, v := range in.NodeSelector {
			if n.Labels[k] != v {
				return false
			}
		}
		return true
	}
	canStay := func(name string) bool {
		n, ok := nodes[name]
		if in.Sticky {
			// Bound to its volume: neither a drain nor a selector change moves it.
			return ok && (n.Healthy || n.Held) && !n.NoRuntime
		}
		return ok && (n.Healthy || n.Held) && !n.Drain && !n.NoRuntime && matches(n) &&
			(in.CoPlace == nil || in.CoPlace.Assigned[name]) && !in.Avoid[name]
	}
	eligible := func(n NodeInfo) bool {
		// A global Service follows its nodes as a Kubernetes DaemonSet does: a cordon does not
		// keep its replica off (its update must land there too); a drain does.
		return n.Healthy && (!n.Unschedulable || in.Global) && !n.Drain && !n.NoRuntime && matches(n) &&
			(in.CoPlace == nil || in.CoPlace.Ready[n.Name]) && !in.Avoid[n.Name]
	}
	// portHolder names a Service holding one of in.HostPorts on node n ("dns holds 53/udp"),
	// or "" when they are all free there.
	portHolder := func(n string) string {
		for _, k := range in.HostPorts {
			if who, ok := in.PortsTaken[n][k]; ok {
				return fmt.Sprintf("%s holds %s", who, k)
			}
		}
		return ""
	}
	placeable := func(n NodeInfo) bool { return eligible(n) && portHolder(n.Name) == "" }
	maxPerNode := in.MaxPerNode
	if in.Global || len(in.HostPorts) > 0 {
		maxPerNode = 1 // one per node: validation refuses more for global; a host port fits once
	}

	as := append([]v1.Assignment(nil), in.Assignments...)
	sort.Slice(as, func(i, j int) bool { return as[i].Index < as[j].Index })
	var current, outdated, waiting []slot
	var failed, waitingMsg, pinned []string
	for _, a := range as {
		n, ok := nodes[a.Node]
		if !ok || !(n.Healthy || n.Held) {
			if in.Sticky {
				// Its volume is on that node: keep the assignment (its index stays taken, so
				// nothing replaces it) and wait for the node to return.
				if a.WaitingSince == nil {
					// Once set it stays, so the status shows one "since" however often this runs.
					t := n.Since
					if t.IsZero() {
						t = in.Now
					}
					if !t.IsZero() {
						t = t.UTC()
						a.WaitingSince = &t
					}
				}
				waiting = append(waiting, slot{a: a})
				since := "unknown"
				if a.WaitingSince != nil {
					since = a.WaitingSince.Format(time.RFC3339)
				}
				waitingMsg = append(waitingMsg, fmt.Sprintf("%d on %s (lost since %s)", a.Index, a.Node, since))
				continue
			}
			continue // lost with its node: placed again below
		}
		a.WaitingSince = nil // its node is back (or it never waited)
		if in.Sticky && n.Drain {
			pinned = append(pinned, fmt.Sprintf("%d on %s", a.Index, a.Node))
		}
		s := slot{a: a, current: a.SpecHash == in.SpecHash && canStay(a.Node)}
		if o, ok := in.Observed[a.Index]; ok && o.Node == a.Node && o.SpecHash == a.SpecHash {
			s.ready = o.Ready
			if o.Failed && a.SpecHash == in.SpecHash {
				msg := fmt.Sprintf("replica %d on %s: %s", a.Index, a.Node, o.Reason)
				if o.Message != "" {
					msg += ": " + o.Message
				}
				failed = append(failed, msg)
			}
		}
		if s.current {
			current = append(current, s)
		} else {
			outdated = append(outdated, s)
		}
	}
	desired := int(max(in.Desired, 0))
	if in.Global {
		targets := map[string]bool{}
		for _, n := range in.Nodes {
			if placeable(n) {
				targets[n.Name] = true
			}
		}
		// Nodes where a replica may stay count too (cordoned, held), as do the nodes of
		// replicas waiting for their volume.
		for _, s := range append(append([]slot(nil), current...), outdated...) {
			if canStay(s.a.Node) {
				targets[s.a.Node] = true
			}
		}
		for _, s := range waiting {
			targets[s.a.Node] = true
		}
		desired = len(targets)
	}
	// Scale down past waiting replicas: they are unready, so they go first, highest index
	// first (their volume stays on the lost node). waiting is in index order, as is as.
	for len(waiting) > 0 && len(waiting)+len(current) > desired {
		waiting, waitingMsg = waiting[:len(waiting)-1], waitingMsg[:len(waitingMsg)-1]
	}
	total := desired
	desired -= len(waiting) // what the live replicas must make up
	surge, unavail := int(max(in.MaxSurge, 0)), int(max(in.MaxUnavailable, 0))
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	readyCount := func() int {
		c := 0
		for _, s := range current {
			if s.ready {
				c++
			}
		}
		for _, s := range outdated {
			if s.ready {
				c++
			}
		}
		return c
	}
	allCurrentReady := func() bool {
		for _, s := range current {
			if !s.ready {
				return false
			}
		}
		return true
	}
	deadline := in.ProgressDeadline > 0 && in.SinceProgress > in.ProgressDeadline &&
		(len(outdated) > 0 || !allCurrentReady() || len(current) != desired)
	rolloutFailed := len(failed) > 0 || deadline

	perNode := func() map[string]int {
		m := map[string]int{}
		for _, s := range current {
			m[s.a.Node]++
		}
		for _, s := range outdated {
			m[s.a.Node]++
		}
		return m
	}

	// Scale down: extra current replicas go, failed ones first, then from the most crowded
	// node (keeping the spread), unready before ready, highest index first. A ready one goes
	// only while desired-maxUnavailable stay ready; the first that cannot go stops the step, so
	// a replica that moves for spreading is not removed before its replacement is ready.
	minAvailable := desired - unavail
	if len(current) > desired {
		counts := perNode()
		failedIdx := map[int32]bool{}
		for _, s := range current {
			if o, ok := in.Observed[s.a.Index]; ok && o.Failed && o.Node == s.a.Node && o.SpecHash == s.a.SpecHash {
				failedIdx[s.a.Index] = true
			}
		}
		cand := append([]slot(nil), current...)
		sort.SliceStable(cand, func(i, j int) bool {
			a, b := cand[i], cand[j]
			if failedIdx[a.a.Index] != failedIdx[b.a.Index] {
				return failedIdx[a.a.Index]
			}
			if counts[a.a.Node] != counts[b.a.Node] {
				return counts[a.a.Node] > counts[b.a.Node]
			}
			if a.ready != b.ready {
				return !a.ready
			}
			return a.a.Index > b.a.Index
		})
		remove := map[int32]bool{}
		ready := readyCount()
		for _, c := range cand {
			if len(current)-len(remove) <= desired {
				break
			}
			if c.ready {
				if ready-1 < minAvailable {
					break
				}
				ready--
			}
			remove[c.a.Index] = true
			counts[c.a.Node]--
		}
		kept := current[:0:0]
		for _, s := range current {
			if !remove[s.a.Index] {
				kept = append(kept, s)
			}
		}
		current = kept
	}

	// Spread back: with nothing else going on, move one replica from the most to the least
	// crowded eligible node when they differ by more than one.
	if !in.Sticky && !rolloutFailed && len(outdated) == 0 && len(current) == desired && allCurrentReady() {
		if i := rebalanceVictim(current, in.Nodes, placeable, maxPerNode); i >= 0 {
			outdated = append(outdated, current[i])
			current = append(current[:i], current[i+1:]...)
		}
	}

	// Sticky volumes: the replacement of an outdated replica goes to the node of its volume.
	// home[n] is how many replacements node n still owes: its outdated replicas not yet
	// matched by a current one there.
	home := map[string]int{}
	if in.Sticky {
		for _, s := range outdated {
			home[s.a.Node]++
		}
		for _, s := range current {
			if home[s.a.Node] > 0 {
				home[s.a.Node]--
			}
		}
	}

	// Remove outdated replicas: unready ones cost no availability; ready ones only while at
	// least desired-maxUnavailable stay ready. A failed rollout removes nothing: the old
	// replicas keep serving.
	held := in.HoldBack != ""
	if !rolloutFailed && !held {
		keep := outdated[:0:0]
		budget := readyCount() - minAvailable
		// Unready first, then the highest index.
		sort.SliceStable(outdated, func(i, j int) bool {
			if outdated[i].ready != outdated[j].ready {
				return !outdated[i].ready
			}
			return outdated[i].a.Index > outdated[j].a.Index
		})
		for _, s := range outdated {
			switch {
			case !s.ready:
			case budget > 0:
				budget--
			default:
				keep = append(keep, s)
				continue
			}
		}
		outdated = keep
	}

	// Create: up to desired current replicas, within desired+maxSurge in total. A failed
	// rollout creates nothing while old replicas remain (the update is stopped); without old
	// ones, replacing lost replicas and scaling go on.
	var unplaced int32
	var unplacedWhy string
	if (!rolloutFailed || len(outdated) == 0) && !held {
		room := desired + surge - len(current) - len(outdated)
		need := desired - len(current)
		used := map[int32]bool{}
		for _, s := range current {
			used[s.a.Index] = true
		}
		for _, s := range outdated {
			used[s.a.Index] = true
		}
		for _, s := range waiting {
			used[s.a.Index] = true // never a second replica for a waiting index
		}
		counts := perNode()
		next := int32(0)
		for k := 0; k < need; k++ {
			if k >= room {
				break
			}
			node, why, owed := "", "", false
			for _, n := range in.Nodes { // by name
				if home[n.Name] == 0 {
					continue
				}
				owed = true
				if n.Healthy && !n.NoRuntime && (maxPerNode <= 0 || counts[n.Name] < int(maxPerNode)) {
					node = n.Name
					home[n.Name]--
					break
				}
			}
			if owed && node == "" {
				// The volume's node cannot take the new replica yet (not Ready, or at
				// maxPerNode while the old one runs): wait, never place it elsewhere.
				break
			}
			if node == "" {
				node, why = pickNode(in.Nodes, placeable, counts, in.Load, in.ImageHolders, maxPerNode)
				if node == "" && len(in.HostPorts) > 0 {
					why = hostPortWhy(in, eligible, portHolder, counts)
				}
			}
			if node == "" {
				unplaced = int32(need - k)
				unplacedWhy = why
				break
			}
			for used[next] {
				next++
			}
			used[next] = true
			counts[node]++
			current = append(current, slot{a: v1.Assignment{Index: next, Node: node, SpecHash: in.SpecHash}, current: true})
		}
	}

	out := Plan{Unplaced: unplaced, Desired: int32(total)}
	for _, s := range current {
		out.Assignments = append(out.Assignments, s.a)
	}
	for _, s := range outdated {
		out.Assignments = append(out.Assignments, s.a)
	}
	for _, s := range waiting {
		out.Assignments = append(out.Assignments, s.a)
	}
	out.Waiting, out.Pinned = waitingMsg, pinned
	sort.Slice(out.Assignments, func(i, j int) bool { return out.Assignments[i].Index < out.Assignments[j].Index })

	updated, ready := 0, 0
	for _, s := range current {
		if s.a.SpecHash == in.SpecHash {
			updated++
			if s.ready {
				ready++
			}
		}
	}
	cond := v1.Condition{Type: v1.ServiceProgressing}
	switch {
	case rolloutFailed:
		cond.Status, cond.Reason = v1.ConditionFalse, v1.ReasonRolloutFailed
		if len(failed) > 0 {
			cond.Message = strings.Join(failed, "; ")
		} else {
			cond.Message = fmt.Sprintf("no progress for %s (updated %d of %d, ready %d)", in.ProgressDeadline, updated, total, ready)
		}
	case held && (len(current) < desired || len(outdated) > 0):
		cond.Status, cond.Reason = v1.ConditionFalse, v1.ReasonWaitingForDependency
		cond.Message = fmt.Sprintf("%d of %d replicas wait for spec.dependsOn: %s", desired-len(current), total, in.HoldBack)
	case len(waiting) > 0:
		cond.Status, cond.Reason = v1.ConditionFalse, v1.ReasonWaitingForNode
		cond.Message = fmt.Sprintf("replicas %s wait for their node: they hold a named volume there (placement.volumes: recreate re-places them on an empty volume)",
			strings.Join(waitingMsg, ", "))
		if unplaced > 0 {
			cond.Message += fmt.Sprintf("; %d of %d replicas cannot be placed: %s", unplaced, total, unplacedWhy)
		}
	case unplaced > 0:
		cond.Status, cond.Reason = v1.ConditionFalse, v1.ReasonUnschedulable
		cond.Message = fmt.Sprintf("%d of %d replicas cannot be placed: %s", unplaced, total, unplacedWhy)
	case len(outdated) == 0 && len(current) == desired && ready == desired:
		out.Complete = true
		cond.Status, cond.Reason = v1.ConditionTrue, v1.ReasonRolloutComplete
		cond.Message = fmt.Sprintf("%d of %d replicas updated and ready", ready, desired)
	default:
		cond.Status, cond.Reason = v1.ConditionTrue, v1.ReasonRollingUpdate
		cond.Message = fmt.Sprintf("updated %d of %d, ready %d, old %d", updated, desired, ready, len(outdated))
	}
	if len(pinned) > 0 {
		cond.Message += fmt.Sprintf("; replicas %s stay on their draining node: they hold a named volume there (placement.volumes: recreate lets a drain move them)",
			strings.Join(pinned, ", "))
	}
	out.Progressing = cond
	return out
}
