package node

import (
	"sort"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// ActionKind is what to do to a container.
type ActionKind string

// Actions of a plan.
const (
	ActCreate  ActionKind = "create"  // create and start replica Index with SpecHash
	ActStart   ActionKind = "start"   // start an exited or never started container again
	ActRestart ActionKind = "restart" // stop and start an unhealthy container
	ActDrain   ActionKind = "drain"   // publish as terminating; removed after the drain delay
	ActRemove  ActionKind = "remove"  // stop and remove
)

// Action is one step of a plan.
type Action struct {
	Kind        ActionKind
	Index       int32
	SpecHash    string
	ContainerID string
	// Why, on a remove of a container sharing a gateway's namespace, says why it goes at once
	// (no drain): "gateway unhealthy" (fail closed) or "namespace owner restarted".
	Why string
	// NetnsOwner, on a create of a Service sharing a namespace, is the owner container to join.
	NetnsOwner string
}

// replicaState is what the reconciler remembers of one replica between passes (in memory: a
// restarted agent starts with a clean slate, which only resets backoffs).
type replicaState struct {
	// failures in a row: exits, failed creates or starts, unhealthy restarts.
	failures int
	// lastFailure is when the last one was seen; the next attempt waits for the backoff.
	lastFailure time.Time
	// lastFinished is the FinishedAt of the last exit counted, so one exit counts once.
	lastFinished time.Time
	// reason and message describe the last failure for status.
	reason   v1.ConditionReason
	message  string
	exitCode int
	// pulling, when set, is the progress of the pull of the replica's image it waits for (it
	// is not a failure).
	pulling string
}

// planInput is the pure planner's input for one service on this node.
type planInput struct {
	// Desired maps replica index to spec hash: this node's assignments.
	Desired    map[int32]string
	Containers []docker.Container
	// Health of each container (by ID) as the agent or Docker sees it.
	Health map[string]v1.Health
	States map[int32]*replicaState
	// Draining maps container IDs to when their drain started.
	Draining   map[string]time.Time
	DrainDelay time.Duration
	Now        time.Time
	Backoff    func(failures int) time.Duration
	// Netns is set for a Service sharing another's network namespace (spec.network): the
	// owner container to join on this node (ID "" when none is usable).
	Netns *netnsOwner
}

// planOutput is the plan and when to look again.
type planOutput struct {
	Actions []Action
	// Wait, when > 0, is when the next backoff or drain ends.
	Wait time.Duration
}

func replicaIndex(c docker.Container) (int32, bool) {
	i, err := strconv.ParseInt(c.Labels[docker.LabelReplica], 10, 32)
	return int32(i), err == nil && i >= 0
}

// plan decides, for one service on this node, which containers to create, start again,
// restart, drain and remove. It is pure.
func plan(in planInput) planOutput {
	var out planOutput
	wait := func(d time.Duration) {
		if d > 0 && (out.Wait == 0 || d < out.Wait) {
			out.Wait = d
		}
	}
	// ready reports whether a backoff allows another attempt now.
	ready := func(st *replicaState) bool {
		if st == nil || st.failures == 0 {
			return true
		}
		left := st.lastFailure.Add(in.Backoff(st.failures)).Sub(in.Now)
		if left > 0 {
			wait(left)
			return false
		}
		return true
	}
	byIndex := map[int32][]docker.Container{}
	var stray []docker.Container
	// Containers sharing a namespace go at once, without a drain, when no owner is usable
	// (fail closed: no traffic while the gateway is unhealthy) or when they joined another
	// owner container or an earlier run of it (that namespace is dead: only a new container
	// gets the live one). The replacement is created on the next pass, once the old name is free.
	recreating := map[int32]bool{}
	if n := in.Netns; n != nil {
		kept := in.Containers[:0:0]
		for _, c := range in.Containers {
			idx, _ := replicaIndex(c)
			why := ""
			switch {
			case n.ID == "":
				why = "gateway unhealthy: " + n.Why
			case c.Labels[docker.LabelNetnsOwner] != n.ID:
				why = "namespace owner recreated"
			case !c.StartedAt.IsZero() && c.StartedAt.Before(n.StartedAt):
				why = "namespace owner restarted"
			}
			if why == "" {
				kept = append(kept, c)
				continue
			}
			out.Actions = append(out.Actions, Action{Kind: ActRemove, Index: idx, ContainerID: c.ID, Why: why})
			recreating[idx] = true
		}
		in.Containers = kept
	}
	for _, c := range in.Containers {
		idx, ok := replicaIndex(c)
		if h, want := in.Desired[idx]; ok && want && c.Labels[docker.LabelSpecHash] == h {
			byIndex[idx] = append(byIndex[idx], c)
			continue
		}
		stray = append(stray, c)
	}
	indices := make([]int32, 0, len(in.Desired))
	for i := range in.Desired {
		indices = append(indices, i)
	}
	sort.Slice(indices, func(a, b int) bool { return indices[a] < indices[b] })
	for _, idx := range indices {
		cs := byIndex[idx]
		st := in.States[idx]
		if len(cs) == 0 {
			if recreating[idx] || (in.Netns != nil && in.Netns.ID == "") {
				if in.Netns.ID != "" {
					wait(100 * time.Millisecond)
				}
				continue
			}
			if ready(st) {
				a := Action{Kind: ActCreate, Index: idx, SpecHash: in.Desired[idx]}
				if in.Netns != nil {
					a.NetnsOwner = in.Netns.ID
				}
				out.Actions = append(out.Actions, a)
			}
			continue
		}
		// Keep one: a running one, else the most recently started.
		sort.SliceStable(cs, func(a, b int) bool {
			if cs[a].Running != cs[b].Running {
				return cs[a].Running
			}
			return cs[a].StartedAt.After(cs[b].StartedAt)
		})
		for _, extra := range cs[1:] {
			out.Actions = append(out.Actions, Action{Kind: ActRemove, Index: idx, ContainerID: extra.ID})
		}
		c := cs[0]
		switch {
		case c.Running && in.Health[c.ID] == v1.HealthUnhealthy:
			if ready(st) {
				out.Actions = append(out.Actions, Action{Kind: ActRestart, Index: idx, ContainerID: c.ID})
			}
		case c.Running, c.State == "restarting", c.State == "removing", c.State == "paused":
		default: // created, exited, dead
			if ready(st) {
				out.Actions = append(out.Actions, Action{Kind: ActStart, Index: idx, ContainerID: c.ID})
			}
		}
	}
	for _, c := range stray {
		idx, _ := replicaIndex(c)
		if c.Running && in.DrainDelay > 0 && in.Health[c.ID] != v1.HealthUnhealthy {
			since, draining := in.Draining[c.ID]
			if !draining {
				out.Actions = append(out.Actions, Action{Kind: ActDrain, Index: idx, ContainerID: c.ID})
				wait(in.DrainDelay)
				continue
			}
			if left := since.Add(in.DrainDelay).Sub(in.Now); left > 0 {
				wait(left)
				continue
			}
		}
		out.Actions = append(out.Actions, Action{Kind: ActRemove, Index: idx, ContainerID: c.ID})
	}
	return out
}

// backoff returns base·2^(failures-1), capped at max.
func backoff(base, max time.Duration) func(int) time.Duration {
	return func(failures int) time.Duration {
		if failures <= 0 {
			return 0
		}
		d := base
		for i := 1; i < failures && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}
