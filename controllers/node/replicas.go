// Replica bookkeeping: the per-replica states (failures, backoff, pulls), the drains and the
// last container list of each service, all guarded by Reconciler.mu.

package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// seen records cs as the last container list of service name, and stops what the reconciler
// kept for containers of it that are gone, even when they were removed behind its back (a
// `docker rm`, an engine reset): their probes and drain entries.
func (r *Reconciler) seen(name string, cs []docker.Container) {
	keep := make(map[string]bool, len(cs))
	for _, c := range cs {
		if c.Running {
			keep[c.ID] = true
		}
	}
	r.prober.forgetService(name, keep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(cs) == 0 {
		delete(r.lastSeen, name)
	} else {
		r.lastSeen[name] = append([]docker.Container(nil), cs...)
	}
	for id, d := range r.draining {
		if d.service == name && !keep[id] {
			delete(r.draining, id)
		}
	}
}

// drainsOf returns when the drains of service name's containers started. A container that is
// desired again (the Service re-created or rolled back while it drained: same index, same spec
// hash) is not draining any more: it is adopted as it is. Before, its entry stayed and it was
// published as terminating for good.
func (r *Reconciler) drainsOf(name string, cs []docker.Container, desired map[int32]string) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Time{}
	for _, c := range cs {
		d, ok := r.draining[c.ID]
		if !ok {
			continue
		}
		if idx, ok := replicaIndex(c); ok && desired[idx] != "" && desired[idx] == c.Labels[docker.LabelSpecHash] {
			delete(r.draining, c.ID)
			r.log.Info("container desired again, drain cancelled", "service", name, "index", idx, "container", c.ID)
			continue
		}
		out[c.ID] = d.since
	}
	return out
}

// drain is a container being drained before it is removed.
type drain struct {
	service string
	since   time.Time
}

// account updates replica states from what Docker shows: a new exit counts as a failure, and
// a replica running and healthy for a while gets a clean slate.
func (r *Reconciler) account(ctx context.Context, name string, svc *v1.Service, cs []docker.Container, now time.Time) map[int32]*replicaState {
	r.mu.Lock()
	states := r.states[name]
	if states == nil {
		states = map[int32]*replicaState{}
		r.states[name] = states
	}
	r.mu.Unlock()
	for _, c := range cs {
		idx, ok := replicaIndex(c)
		if !ok {
			continue
		}
		r.mu.Lock()
		st := states[idx]
		if st == nil {
			st = &replicaState{}
			states[idx] = st
		}
		r.mu.Unlock()
		switch {
		case !c.Running && (c.State == "exited" || c.State == "dead") && c.FinishedAt.After(st.lastFinished) && !c.FinishedAt.Before(c.StartedAt):
			// The last lines of this run only.
			tail, _ := r.cfg.Docker.LogTail(ctx, c.ID, c.StartedAt, 5)
			r.mu.Lock()
			st.lastFinished = c.FinishedAt
			st.failures++
			st.lastFailure = now
			st.exitCode = c.ExitCode
			st.reason = v1.ReasonExited
			if st.failures >= r.cfg.CrashLoopThreshold {
				st.reason = v1.ReasonCrashLoop
			}
			st.message = fmt.Sprintf("exit code %d", c.ExitCode)
			if c.OOMKilled {
				st.message += " (OOM killed)"
			}
			if tail != "" {
				st.message += ": " + tail
			}
			r.mu.Unlock()
			oom := ""
			if c.OOMKilled {
				oom = " (OOM killed)"
			}
			r.event(name, v1.EventWarning, v1.EventExited, "replica %d exited with code %d%s", idx, c.ExitCode, oom)
		case c.Running && st.failures > 0 && now.Sub(c.StartedAt) > max(10*time.Second, 2*r.backoff(st.failures)):
			r.mu.Lock()
			if h, _ := r.prober.status(c.ID); h != v1.HealthUnhealthy && c.Health != "unhealthy" {
				*st = replicaState{lastFinished: st.lastFinished}
			}
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int32]*replicaState, len(states))
	for k, v := range states {
		c := *v
		out[k] = &c
	}
	return out
}

func (r *Reconciler) state(name string, idx int32) *replicaState {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.states[name]
	if m == nil {
		m = map[int32]*replicaState{}
		r.states[name] = m
	}
	st := m[idx]
	if st == nil {
		st = &replicaState{}
		m[idx] = st
	}
	return st
}

// fail records a failed attempt on replica idx.
func (r *Reconciler) fail(name string, idx int32, reason v1.ConditionReason, err error, now time.Time) {
	st := r.state(name, idx)
	r.mu.Lock()
	defer r.mu.Unlock()
	st.failures++
	st.lastFailure = now
	st.reason, st.message = reason, err.Error()
}

func reasonOf(err error) v1.ConditionReason {
	switch {
	case errors.Is(err, docker.ErrImageNotFound):
		return v1.ReasonImageNotFound
	case errors.Is(err, docker.ErrPortConflict):
		return v1.ReasonPortConflict
	case errors.Is(err, docker.ErrVolumeSource):
		return v1.ReasonVolumeNotFound
	case errors.Is(err, docker.ErrSecretNotFound):
		return v1.ReasonSecretNotFound
	case errors.Is(err, docker.ErrFileSourceNotFound):
		return v1.ReasonFileSourceNotFound
	}
	return v1.ReasonCreateFailed
}

func (r *Reconciler) clearReason(name string, idx int32) {
	st := r.state(name, idx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.reason != v1.ReasonExited && st.reason != v1.ReasonCrashLoop && st.reason != v1.ReasonUnhealthy {
		st.reason, st.message = "", ""
	}
}
