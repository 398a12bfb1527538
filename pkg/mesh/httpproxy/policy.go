package httpproxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Order is how a request's upstreams are ordered.
type Order string

// Orders (failover.order).
const (
	OrderPriority     Order = "priority"
	OrderWeighted     Order = "weighted"
	OrderLeastLatency Order = "leastLatency"
)

// Policy is one listener's failover policy (the resolved failover block of a Service).
type Policy struct {
	// On is failover.on: statuses ("503", "5xx", "4xx") and conditions ("connectFailure",
	// "reset", "timeout"). connectFailure is always implied: a request never sent is always
	// retried.
	On []string
	// Order. Default priority.
	Order Order
	// PerTryTimeout bounds an attempt until its response headers. Default 30s.
	PerTryTimeout time.Duration
	// FirstByteTimeout bounds the wait for the first body byte while a response is held.
	// Default 10s.
	FirstByteTimeout time.Duration
	// MaxAttempts per request, the first included. Default 3.
	MaxAttempts int
	// RetryBudget in percent of the requests of the last 10 s (plus MinRetries). Default 20.
	// Negative: no budget (every retry allowed).
	RetryBudget int
	// MaxReplayBody is the largest request body held for a replay. Default 1 MiB.
	MaxReplayBody int64
	// ReplayUnsafe replays any method after an ambiguous failure. Default false.
	ReplayUnsafe bool
	// Breaker of each upstream.
	Breaker BreakerPolicy
}

// BreakerPolicy is failover.breaker.
type BreakerPolicy struct {
	// ConsecutiveFailures opens after this many failures in a row; 0: off. Default 5.
	ConsecutiveFailures int
	// FailureRatio opens when this share of the window's requests failed; 0: off. Default 0.5.
	FailureRatio float64
	// Window of FailureRatio. Default 10s.
	Window time.Duration
	// MinRequests in the window for FailureRatio. Default 20.
	MinRequests int
	// OpenFor is how long an open breaker skips its upstream. Default 30s.
	OpenFor time.Duration
	// HalfOpenRequests probes admitted half-open. Default 1.
	HalfOpenRequests int
}

// MinRetries is the number of retries every 10 s window allows on top of RetryBudget percent
// (10 a second, Linkerd's default), so that a quiet or cold listener can still fail over: a
// percentage of the few requests seen in a fresh window would refuse the first retries.
const MinRetries = 100

// DefaultPolicy is the policy of a Service that says nothing (docs/proxy.md).
func DefaultPolicy() Policy {
	return Policy{
		On:    []string{"connectFailure", "reset", "timeout", "403", "429", "5xx"},
		Order: OrderPriority, PerTryTimeout: 30 * time.Second, FirstByteTimeout: 10 * time.Second,
		MaxAttempts: 3, RetryBudget: 20, MaxReplayBody: 1 << 20,
		Breaker: BreakerPolicy{ConsecutiveFailures: 5, FailureRatio: 0.5, Window: 10 * time.Second, MinRequests: 20,
			OpenFor: 30 * time.Second, HalfOpenRequests: 1},
	}
}

func (p *Policy) withDefaults() {
	d := DefaultPolicy()
	if p.On == nil {
		p.On = d.On
	}
	if p.Order == "" {
		p.Order = d.Order
	}
	if p.PerTryTimeout <= 0 {
		p.PerTryTimeout = d.PerTryTimeout
	}
	if p.FirstByteTimeout <= 0 {
		p.FirstByteTimeout = d.FirstByteTimeout
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.Breaker.Window <= 0 {
		p.Breaker.Window = d.Breaker.Window
	}
	if p.Breaker.OpenFor <= 0 {
		p.Breaker.OpenFor = d.Breaker.OpenFor
	}
	if p.Breaker.HalfOpenRequests <= 0 {
		p.Breaker.HalfOpenRequests = d.Breaker.HalfOpenRequests
	}
}

// matcher is Policy.On compiled.
type matcher struct {
	reset, timeout bool
	status         [600]bool
}

func compileOn(on []string) (matcher, error) {
	var m matcher
	for _, v := range on {
		switch v {
		case "connectFailure":
		case "reset":
			m.reset = true
		case "timeout":
			m.timeout = true
		case "4xx", "5xx":
			base := 400
			if v == "5xx" {
				base = 500
			}
			for c := base; c < base+100; c++ {
				m.status[c] = true
			}
		default:
			n, err := strconv.Atoi(v)
			if err != nil || n < 400 || n > 599 {
				return m, fmt.Errorf("failover on: unknown value %q", v)
			}
			m.status[n] = true
		}
	}
	return m, nil
}

func (m *matcher) matchStatus(code int) bool {
	return code >= 0 && code < len(m.status) && m.status[code]
}

// declined reports whether a status means the upstream refused the request without acting on
// it (403, 429, 503): failing over is safe for any method.
func declined(code int) bool {
	return code == http.StatusForbidden || code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable
}

// idempotent reports whether a request may be replayed after an ambiguous failure without
// opting in: an idempotent method per RFC 9110 section 9.2.2 (GET, HEAD, OPTIONS, TRACE, PUT,
// DELETE), or an Idempotency-Key (or X-Idempotency-Key) header.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

// MaxRetryAfter caps how long one Retry-After parks an upstream.
const MaxRetryAfter = 10 * time.Minute

// ParseRetryAfter reads a Retry-After value (RFC 9110 section 10.2.3): delay-seconds or an
// HTTP-date, relative to now. ok is false for a missing or malformed value; a date in the past
// is 0. The result is capped at MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, false
			}
		}
		if len(v) > 9 { // more than 31 years: cap without overflowing
			return MaxRetryAfter, true
		}
		n, _ := strconv.Atoi(v)
		d := time.Duration(n) * time.Second
		return min(d, MaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, MaxRetryAfter), true
}
