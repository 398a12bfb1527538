package egress

import (
	"time"
)

// Healing steps, in escalation order. Recreating the dependents is not a step of the Healer:
// the node reconciler recreates every container sharing a gateway's namespace whenever the
// gateway container's run is newer than theirs (after any restart or recreation), once the
// gateway is healthy again.
const (
	StepNone StepKind = iota
	StepReconnect
	StepRestart
	// StepFailed: the local steps are exhausted; the replica is reported EgressFailed and the
	// scheduler re-places it on another node (its dependents follow).
	StepFailed
)

// StepKind is a Step as a number (for ordering); String gives its name.
type StepKind int

func (s StepKind) String() string {
	switch s {
	case StepReconnect:
		return "reconnect"
	case StepRestart:
		return "restart"
	case StepFailed:
		return "replace"
	}
	return "none"
}

// Policy bounds the escalation.
type Policy struct {
	// Threshold failed probes in a row make the egress unhealthy (egressCheck.failureThreshold).
	Threshold int
	// Settle is how long a step is given to work before the next one, and the base of the
	// restart backoff (doubling per restart). Default: 2 × interval × threshold, at least 2s.
	Settle time.Duration
	// MaxRestarts is how many restarts are tried before the replica is given up on this
	// node. Default 2.
	MaxRestarts int
	// Reconnect: a reconnect hook is configured (the first step). Default false.
	Reconnect bool
}

// DefaultPolicy is the policy for an egress check (defaulted).
func DefaultPolicy(interval time.Duration, threshold int, reconnect bool) Policy {
	return Policy{Threshold: threshold, Settle: max(2*interval*time.Duration(threshold), 2*time.Second), MaxRestarts: 2, Reconnect: reconnect}
}

// Healer is the escalation state machine of one gateway replica: fed probe results (Observe)
// and asked what to do (Next), with the time passed in. It is not safe for concurrent use
// (the node reconciler holds its lock around it). It never asks for a step before the previous
// one settled: no hot loop whatever the probes do.
type Healer struct {
	p Policy
	// failures in a row and the last result.
	failures int
	last     Result
	// unhealthy since the threshold was crossed; healthy again on the first passing probe.
	unhealthy bool
	// stage is the last step taken in this episode; stepAt when.
	stage    StepKind
	stepAt   time.Time
	restarts int
	// probed: at least one result was seen.
	probed bool
}

// NewHealer returns a healer for policy p.
func NewHealer(p Policy) *Healer {
	if p.Threshold <= 0 {
		p.Threshold = 1
	}
	if p.MaxRestarts <= 0 {
		p.MaxRestarts = 2
	}
	if p.Settle <= 0 {
		p.Settle = 2 * time.Second
	}
	return &Healer{p: p}
}

// Observe records a probe result. It reports whether the egress health changed.
func (h *Healer) Observe(r Result) (changed bool) {
	h.last, h.probed = r, true
	if r.OK {
		h.failures = 0
		if h.unhealthy {
			h.unhealthy = false
			// A new episode starts from the first step; the restart count goes too (a flapping
			// gateway is still bounded by Settle between steps).
			h.stage, h.restarts = StepNone, 0
			return true
		}
		return false
	}
	h.failures++
	if !h.unhealthy && h.failures >= h.p.Threshold {
		h.unhealthy = true
		return true
	}
	return false
}

// Healthy reports whether the egress works (true until Threshold failures in a row).
func (h *Healer) Healthy() bool { return !h.unhealthy }

// Probed reports whether any probe result was seen.
func (h *Healer) Probed() bool { return h.probed }

// Last is the last probe result.
func (h *Healer) Last() Result { return h.last }

// Failed reports whether the local steps are exhausted (StepFailed was taken).
func (h *Healer) Failed() bool { return h.unhealthy && h.stage == StepFailed }

// Next returns the step to take now (StepNone for none) and, when > 0, how long until the next
// step could be due. The caller takes the step and calls Took.
func (h *Healer) Next(now time.Time) (StepKind, time.Duration) {
	if !h.unhealthy || h.stage == StepFailed {
		return StepNone, 0
	}
	if h.stage != StepNone {
		wait := h.p.Settle
		if h.stage == StepRestart {
			wait = h.p.Settle << (h.restarts - 1)
		}
		if left := h.stepAt.Add(wait).Sub(now); left > 0 {
			return StepNone, left
		}
	}
	switch {
	case h.stage == StepNone && h.p.Reconnect:
		return StepReconnect, 0
	case h.restarts < h.p.MaxRestarts:
		return StepRestart, 0
	default:
		return StepFailed, 0
	}
}

// Took records that step was taken at now.
func (h *Healer) Took(step StepKind, now time.Time) {
	h.stage, h.stepAt = step, now
	if step == StepRestart {
		h.restarts++
		// The restarted container's probes start again from zero: Threshold new failures (not
		// the ones before the restart) keep it unhealthy, but it stays unhealthy meanwhile.
		h.failures = 0
	}
}

// Stage is the last step taken in the current episode.
func (h *Healer) Stage() StepKind { return h.stage }
