// Serving one request: attempts against upstreams in order, what each outcome allows (retry,
// park, answer), the retry budget, and copying the chosen answer to the client.

package httpproxy

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// outcome classifies one attempt.
type outcome int

const (
	outOK        outcome = iota
	outNeverSent         // not sent at all: always retried
	outDeclined          // 403/429/503 in failover.on: retried for any method
	outAmbiguous         // other matched failure: retried only when safe to replay
	outFailed            // a failure failover.on does not list: passed on, not retried
	outClientGone
)

type attemptResult struct {
	kind    outcome
	trigger string         // "connectFailure", "reset", "timeout" or the status
	resp    *http.Response // nil for transport errors
	status  int            // what the client gets for a transport error
	err     error
	first   []byte // the first body bytes read by the gate
	firstEr error
	cancel  context.CancelFunc
}

func (r *attemptResult) release() {
	if r.resp != nil {
		r.resp.Body.Close()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

// ServeHTTP proxies one request: see the package doc and docs/proxy.md for the rules.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := h.state.Load()
	start := h.cfg.Clock.Now()
	reqID := r.Header.Get(HeaderRequestID)
	if reqID == "" {
		reqID = newRequestID()
	}
	st.budget.request()
	// A streamed request body is still being read by the upstream transport when the response
	// headers go downstream (it reads one byte past Content-Length to check for extra data).
	// Without full duplex, the HTTP/1 server consumes and closes the unread body at the first
	// write, the transport's read fails, and it closes the upstream connection under the
	// response body being relayed: the client got a truncated response (TestFarm/slow/PUT_large,
	// about one run in ten). HTTP/2 is full duplex anyway (ErrNotSupported is fine).
	_ = http.NewResponseController(w).EnableFullDuplex()

	body, err := readBody(r, st.policy.MaxReplayBody)
	if err != nil {
		h.answer(w, r, "none", reqID, http.StatusBadRequest, "reading the request body: "+err.Error(), start)
		return
	}
	safe := st.policy.ReplayUnsafe || idempotent(r)
	order := h.order(st)
	tried := make([]bool, len(st.ups))
	up, i, done := h.pick(st, order, tried)
	if up == nil {
		h.answer(w, r, "none", reqID, http.StatusServiceUnavailable, "no upstream available", start)
		return
	}
	for attempt := 1; ; attempt++ {
		tried[i] = true
		// Hold the response for its first byte only while a replay after a timeout is
		// possible at all: otherwise holding it would only delay the client.
		gate := st.on.timeout && body.replayable() && safe && attempt < st.policy.MaxAttempts && h.hasAlternative(st, tried)
		res := h.attempt(st, r, up, body, reqID, gate)
		switch res.kind {
		case outOK:
			done(nil)
		case outClientGone:
			done(errExcluded)
		case outFailed:
			done(nil) // not a failure the operator asked to act on
		default:
			if res.resp != nil && (res.resp.StatusCode == http.StatusTooManyRequests || res.resp.StatusCode == http.StatusServiceUnavailable) {
				if d, ok := ParseRetryAfter(res.resp.Header.Get("Retry-After"), h.cfg.Clock.Now()); ok {
					up.parkedUntil.Store(h.cfg.Clock.Now().Add(d).UnixNano())
					up.parks.Inc()
					done(errExcluded) // parked, not broken
					break
				}
			}
			done(errAttemptFailed)
		}
		up.attempts[[...]string{"ok", "never_sent", "declined", "ambiguous", "ambiguous", "client_gone"}[res.kind]].Inc()
		if res.kind == outOK || res.kind == outFailed {
			h.deliver(w, r, up, reqID, &res, start)
			return
		}
		if res.kind == outClientGone {
			res.release()
			return
		}
		// A failure failover.on matched: retry elsewhere if the rules allow it.
		reason := ""
		switch {
		case res.kind == outNeverSent:
		case !body.replayable():
			reason = "body_streamed"
		case res.kind == outAmbiguous && !safe:
			reason = "non_idempotent"
		}
		var next *upstreamState
		var nextI int
		var nextDone func(error)
		if reason == "" && attempt >= st.policy.MaxAttempts {
			reason = "attempts"
		}
		if reason == "" {
			next, nextI, nextDone = h.pick(st, order, tried)
			if next == nil {
				reason = "no_upstream"
			}
		}
		if reason == "" && res.kind != outNeverSent && !st.budget.tryRetry() {
			reason = "budget"
			h.budgetOut.Inc()
			nextDone(errExcluded)
		}
		if reason != "" {
			h.m.skipped.WithLabelValues(h.service, reason).Inc()
			h.deliver(w, r, up, reqID, &res, start)
			return
		}
		h.m.failovers.WithLabelValues(h.service, res.trigger).Inc()
		h.log.Debug("failover", "from", up.Name, "to", next.Name, "trigger", res.trigger, "request_id", reqID)
		res.release()
		up, i, done = next, nextI, nextDone
	}
}

// attempt sends r to u once and reads up to its headers (and, with gate, its first body bytes).
func (h *Handler) attempt(st *handlerState, r *http.Request, u *upstreamState, body *reqBody, reqID string, gate bool) attemptResult {
	ctx, cancel := context.WithCancel(r.Context())
	var timedOut atomic.Bool
	t := h.cfg.Clock.AfterFunc(st.policy.PerTryTimeout, func() { timedOut.Store(true); cancel() })
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	out := outRequest(ctx, r, u, body, reqID)
	sent := h.cfg.Clock.Now()
	resp, err := u.rt.RoundTrip(out)
	if !t.Stop() && err == nil {
		// The per-try timeout fired as the headers came: the attempt is cancelled.
		resp.Body.Close()
		resp, err = nil, context.DeadlineExceeded
	}
	res := attemptResult{cancel: cancel}
	if err != nil {
		cancel()
		res.err = err
		switch {
		case r.Context().Err() != nil:
			res.kind = outClientGone
		case !wrote.Load() && !body.touched.Load():
			res.kind, res.trigger, res.status = outNeverSent, "connectFailure", http.StatusBadGateway
		case timedOut.Load():
			res.kind, res.trigger, res.status = outAmbiguous, "timeout", http.StatusGatewayTimeout
			if !st.on.timeout {
				res.kind = outFailed
			}
		default:
			res.kind, res.trigger, res.status = outAmbiguous, "reset", http.StatusBadGateway
			if !st.on.reset {
				res.kind = outFailed
			}
		}
		return res
	}
	res.resp = resp
	secs := h.cfg.Clock.Since(sent).Seconds()
	u.headerTime.Observe(secs)
	for {
		old := u.ewma.Load()
		v := secs
		if o := math.Float64frombits(old); o != 0 {
			v = 0.8*o + 0.2*secs
		}
		if u.ewma.CompareAndSwap(old, math.Float64bits(v)) {
			break
		}
	}
	if code := resp.StatusCode; st.on.matchStatus(code) {
		res.trigger = strconv.Itoa(code)
		res.kind = outAmbiguous
		if declined(code) {
			res.kind = outDeclined
		}
		return res
	}
	if gate && resp.Body != http.NoBody {
		var fbTimedOut atomic.Bool
		t := h.cfg.Clock.AfterFunc(st.policy.FirstByteTimeout, func() { fbTimedOut.Store(true); cancel() })
		buf := make([]byte, 4096)
		n, rerr := resp.Body.Read(buf)
		if !t.Stop() && rerr == nil {
			n, rerr = 0, context.DeadlineExceeded
		}
		if n == 0 && rerr != nil && rerr != io.EOF {
			resp.Body.Close()
			res.resp, res.err = nil, rerr
			switch {
			case r.Context().Err() != nil:
				res.kind = outClientGone
			case fbTimedOut.Load():
				res.kind, res.trigger, res.status = outAmbiguous, "timeout", http.StatusGatewayTimeout
			default:
				res.kind, res.trigger, res.status = outAmbiguous, "reset", http.StatusBadGateway
				if !st.on.reset {
					res.kind = outFailed
				}
			}
			return res
		}
		res.first, res.firstEr = buf[:n], rerr
	}
	res.kind = outOK
	return res
}

// deliver sends an attempt's result downstream: its response streamed as it comes (flushed at
// once for event streams and bodies of unknown length), or the proxy's own error status.
func (h *Handler) deliver(w http.ResponseWriter, r *http.Request, u *upstreamState, reqID string, res *attemptResult, start time.Time) {
	defer res.release()
	if res.resp == nil {
		msg := fmt.Sprintf("upstream %s: %s", u.Name, res.trigger)
		if res.err != nil {
			msg += ": " + res.err.Error()
		}
		h.answer(w, r, u.Name, reqID, res.status, msg, start)
		return
	}
	resp := res.resp
	hdr := w.Header()
	copyHeader(hdr, resp.Header)
	removeHopHeaders(hdr)
	hdr.Set(HeaderUpstream, u.Name)
	hdr.Set(HeaderRequestID, reqID)
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		hdr.Set("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	h.durObs.Observe(h.cfg.Clock.Since(start).Seconds())
	h.m.requests.WithLabelValues(h.service, u.Name, strconv.Itoa(resp.StatusCode)).Inc()
	stream := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	rc := http.NewResponseController(w)
	if len(res.first) > 0 {
		if _, err := w.Write(res.first); err != nil {
			return
		}
	}
	if stream {
		_ = rc.Flush()
	}
	if res.firstEr == nil {
		bp := h.bufs.Get().(*[]byte)
		defer h.bufs.Put(bp)
		buf := *bp
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if stream {
					_ = rc.Flush()
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				// The first byte went downstream: nothing may be replayed. End the
				// client's response abruptly so it sees the truncation.
				if r.Context().Err() == nil {
					h.log.Debug("upstream failed mid-body", "upstream", u.Name, "err", err, "request_id", reqID)
				}
				_ = rc.Flush() // what came so far, then the abrupt end
				panic(http.ErrAbortHandler)
			}
		}
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			hdr.Add(http.TrailerPrefix+k, v)
		}
	}
}

// answer writes the proxy's own response.
func (h *Handler) answer(w http.ResponseWriter, _ *http.Request, upstream, reqID string, code int, msg string, start time.Time) {
	w.Header().Set(HeaderUpstream, upstream)
	w.Header().Set(HeaderRequestID, reqID)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
	h.durObs.Observe(h.cfg.Clock.Since(start).Seconds())
	h.m.requests.WithLabelValues(h.service, upstream, strconv.Itoa(code)).Inc()
}
