package httpproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Headers the proxy sets.
const (
	// HeaderUpstream names the upstream that answered: its URL, or "<node>/<svc>-<i>" for a
	// replica; "none" when the proxy answered itself (no upstream available).
	HeaderUpstream = "X-Constellation-Upstream"
	// HeaderRequestID is propagated to the upstream and back, generated when missing.
	HeaderRequestID = "X-Request-Id"
)

// Upstream is one place a listener's requests can go.
type Upstream struct {
	// Name is what HeaderUpstream says and what metrics and breakers are keyed by: the URL of
	// an outside upstream, "<node>/<svc>-<i>" for a replica. Unique within an Entry.
	Name string
	// URL is the scheme and host[:port] to send to, and a path prefix prepended to the
	// request's path.
	URL *url.URL
	// RewriteHost sends URL's host as the Host header (outside upstreams); otherwise the
	// client's Host is kept (replicas).
	RewriteHost bool
	// Weight for OrderWeighted (at least 1).
	Weight int
	// Priority for OrderPriority: lower first; equal priorities take turns.
	Priority int
	// Healthy: false takes the upstream out of every pick (a replica not Ready, a via egress
	// not EgressHealthy or unknown: never dialled directly instead).
	Healthy bool
	// Via dials through an egress proxy; nil: direct.
	Via *Via
}

// Via is an egress proxy: Scheme "socks5" or "http" (CONNECT), at Address (ip:port).
type Via struct {
	Scheme  string
	Address string
}

// upstreamState is an upstream with what the handler learnt about it, kept across Set calls
// while its Name stays.
type upstreamState struct {
	Upstream
	rt          http.RoundTripper
	br          *breaker
	brPolicy    BreakerPolicy
	parkedUntil atomic.Int64  // unix nanoseconds
	ewma        atomic.Uint64 // float64 bits: moving average of seconds to headers
	attempts    map[string]prometheus.Counter
	headerTime  prometheus.Observer
	parks       prometheus.Counter
}

// handlerState is immutable once published.
type handlerState struct {
	policy Policy
	on     matcher
	ups    []*upstreamState
	budget *budget
}

// HandlerConfig configures a Handler. The zero value of every field means its default.
type HandlerConfig struct {
	// Service labels metrics and logs.
	Service string
	// Clock times per-try and first-byte timeouts, breakers' open periods, Retry-After parks
	// and the retry budget. Default the real clock.
	Clock clock.WithDelayedExecution
	// Transport sends direct attempts; Via attempts get one Transport per egress from
	// ViaTransport. Default NewTransport().
	Transport http.RoundTripper
	// ViaTransport returns the RoundTripper for an egress. Default: a Transport dialling
	// through it (see DialVia), one per egress, shared by the Handlers of a Proxy.
	ViaTransport func(Via) http.RoundTripper
	// Rand returns a uniform float in [0, 1) for OrderWeighted. Default math/rand/v2.
	Rand func() float64
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Metrics. Default: unregistered ones.
	metrics *metrics
}

// Handler proxies one listener's requests. It is safe for concurrent use; Set swaps its policy
// and upstreams atomically.
type Handler struct {
	cfg     HandlerConfig
	log     *slog.Logger
	m       *metrics
	service string
	rr      atomic.Uint64
	bufs    sync.Pool

	durObs       prometheus.Observer
	budgetOut    prometheus.Counter
	setMu        sync.Mutex // serialises Set
	state        atomic.Pointer[handlerState]
	defaultTrans http.RoundTripper
}

// NewHandler returns a Handler with no upstreams (every request gets 503 until Set).
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(nil)
	}
	if cfg.ViaTransport == nil {
		vt := newViaTransports()
		cfg.ViaTransport = vt.get
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.metrics == nil {
		cfg.metrics, _ = newMetrics(nil)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "http-proxy", "service", cfg.Service), m: cfg.metrics,
		service: cfg.Service}
	h.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	h.durObs = h.m.duration.WithLabelValues(cfg.Service)
	h.budgetOut = h.m.budgetOut.WithLabelValues(cfg.Service)
	p := DefaultPolicy()
	on, _ := compileOn(p.On)
	h.state.Store(&handlerState{policy: p, on: on, budget: newBudget(p.RetryBudget, cfg.Clock)})
	return h
}

// Set replaces the policy and the upstreams. An upstream whose Name was there before keeps its
// breaker (unless the breaker policy changed), its Retry-After park and its latency average.
func (h *Handler) Set(p Policy, ups []Upstream) error {
	p.withDefaults()
	on, err := compileOn(p.On)
	if err != nil {
		return err
	}
	h.setMu.Lock()
	defer h.setMu.Unlock()
	old := h.state.Load()
	prev := map[string]*upstreamState{}
	for _, u := range old.ups {
		prev[u.Name] = u
	}
	st := &handlerState{policy: p, on: on, budget: old.budget}
	if old.policy.RetryBudget != p.RetryBudget || old.budget == nil {
		st.budget = newBudget(p.RetryBudget, h.cfg.Clock)
	}
	names := map[string]bool{}
	for _, u := range ups {
		if u.Name == "" || u.URL == nil || names[u.Name] {
			return fmt.Errorf("http proxy %s: upstream %q: empty, without URL or listed twice", h.service, u.Name)
		}
		names[u.Name] = true
		if u.Weight < 1 {
			u.Weight = 1
		}
		s := &upstreamState{Upstream: u}
		if o, ok := prev[u.Name]; ok && o.brPolicy == p.Breaker {
			s.br, s.brPolicy = o.br, o.brPolicy
			s.parkedUntil.Store(o.parkedUntil.Load())
			s.ewma.Store(o.ewma.Load())
		} else {
			s.brPolicy = p.Breaker
			name := u.Name
			s.br = newBreaker(h.service+" "+name, p.Breaker, h.cfg.Clock, func(from, to BreakerState) {
				h.m.breakerState.WithLabelValues(h.service, name).Set(stateValue(to))
				h.m.breakerChange.WithLabelValues(h.service, name, string(to)).Inc()
				h.log.Info("upstream breaker "+string(to), "upstream", name, "from", string(from))
			})
			h.m.breakerState.WithLabelValues(h.service, name).Set(0)
		}
		if u.Via != nil {
			s.rt = h.cfg.ViaTransport(*u.Via)
		} else {
			s.rt = h.cfg.Transport
		}
		s.attempts = map[string]prometheus.Counter{}
		for _, o := range []string{"ok", "never_sent", "declined", "ambiguous", "client_gone"} {
			s.attempts[o] = h.m.attempts.WithLabelValues(h.service, u.Name, o)
		}
		s.headerTime = h.m.upstreamTime.WithLabelValues(h.service, u.Name)
		s.parks = h.m.parks.WithLabelValues(h.service, u.Name)
		st.ups = append(st.ups, s)
	}
	for name := range prev {
		if !names[name] {
			l := prometheus.Labels{"service": h.service, "upstream": name}
			for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{h.m.requests, h.m.attempts, h.m.breakerState,
				h.m.breakerChange, h.m.parks, h.m.upstreamTime} {
				v.DeletePartialMatch(l)
			}
		}
	}
	h.state.Store(st)
	return nil
}

// UpstreamStatus is one upstream as the handler sees it now.
type UpstreamStatus struct {
	Name    string
	Healthy bool
	Breaker BreakerState
	// ParkedFor is what is left of a Retry-After park; 0: not parked.
	ParkedFor time.Duration
	// Latency is the moving average of the time to response headers; 0: none seen.
	Latency time.Duration
}

// Upstreams returns every upstream's state, in Set's order.
func (h *Handler) Upstreams() []UpstreamStatus {
	st := h.state.Load()
	now := h.cfg.Clock.Now().UnixNano()
	out := make([]UpstreamStatus, 0, len(st.ups))
	for _, u := range st.ups {
		s := UpstreamStatus{Name: u.Name, Healthy: u.Healthy, Breaker: u.br.state(),
			Latency: time.Duration(math.Float64frombits(u.ewma.Load()) * float64(time.Second))}
		if p := u.parkedUntil.Load(); p > now {
			s.ParkedFor = time.Duration(p - now)
		}
		out = append(out, s)
	}
	return out
}

// order returns the indexes of st.ups in the order this request tries them (before skipping
// the unhealthy, parked and open ones).
func (h *Handler) order(st *handlerState) []int {
	n := len(st.ups)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if n < 2 {
		return idx
	}
	rr := h.rr.Add(1) - 1
	switch st.policy.Order {
	case OrderWeighted:
		// Efraimidis-Spirakis: a weighted random permutation in one pass.
		keys := make([]float64, n)
		for i, u := range st.ups {
			keys[i] = -math.Log(1-h.cfg.Rand()) / float64(u.Weight)
		}
		insertionSort(idx, func(a, b int) bool { return keys[a] < keys[b] })
		return idx
	case OrderLeastLatency:
		lat := func(i int) float64 { return math.Float64frombits(st.ups[i].ewma.Load()) }
		insertionSort(idx, func(a, b int) bool { return lat(a) < lat(b) })
		rotateTies(idx, rr, func(a, b int) bool { return lat(a) == lat(b) })
	default:
		insertionSort(idx, func(a, b int) bool { return st.ups[a].Priority < st.ups[b].Priority })
		rotateTies(idx, rr, func(a, b int) bool { return st.ups[a].Priority == st.ups[b].Priority })
	}
	return idx
}

func insertionSort(idx []int, less func(a, b int) bool) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && less(idx[j], idx[j-1]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

// rotateTies rotates every run of equal entries by rr, so that equals take turns.
func rotateTies(idx []int, rr uint64, eq func(a, b int) bool) {
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && eq(idx[start], idx[end]) {
			end++
		}
		if k := int(rr % uint64(end-start)); k > 0 {
			run := idx[start:end]
			tmp := append(append([]int(nil), run[k:]...), run[:k]...)
			copy(run, tmp)
		}
		start = end
	}
}

// available reports whether u may be picked now (without asking its breaker).
func (u *upstreamState) available(now int64) bool {
	return u.Healthy && u.parkedUntil.Load() <= now
}

// pick returns the first upstream of order not tried yet that is available and whose breaker
// admits an attempt.
func (h *Handler) pick(st *handlerState, order []int, tried []bool) (*upstreamState, int, func(error)) {
	now := h.cfg.Clock.Now().UnixNano()
	for _, i := range order {
		u := st.ups[i]
		if tried[i] || !u.available(now) {
			continue
		}
		if done, ok := u.br.allow(); ok {
			return u, i, done
		}
	}
	return nil, -1, nil
}

// hasAlternative reports whether another upstream could take a retry (breakers not asked).
func (h *Handler) hasAlternative(st *handlerState, tried []bool) bool {
	now := h.cfg.Clock.Now().UnixNano()
	for i, u := range st.ups {
		if !tried[i] && u.available(now) && u.br.state() != StateOpen {
			return true
		}
	}
	return false
}

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

// reqBody is a request's body as the attempts see it: held in memory (replayable) or streamed
// once (too large: only an attempt that never touched it may be retried).
type reqBody struct {
	none    bool
	buf     []byte
	stream  io.Reader
	length  int64
	touched atomic.Bool
}

func (b *reqBody) replayable() bool { return b.stream == nil }

func readBody(r *http.Request, max int64) (*reqBody, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &reqBody{none: true}, nil
	}
	if r.ContentLength > max {
		return &reqBody{stream: r.Body, length: r.ContentLength}, nil
	}
	// Known length within max, or unknown length: read up to max+1 bytes.
	limit := max + 1
	if r.ContentLength > 0 {
		limit = r.ContentLength
	}
	buf := make([]byte, 0, min(limit, 64<<10))
	w := bytes.NewBuffer(buf)
	n, err := io.Copy(w, io.LimitReader(r.Body, limit))
	if err != nil {
		return nil, err
	}
	if r.ContentLength == -1 && n > max {
		return &reqBody{stream: io.MultiReader(bytes.NewReader(w.Bytes()), r.Body), length: -1}, nil
	}
	return &reqBody{buf: w.Bytes(), length: n}, nil
}

type touchReader struct {
	r io.Reader
	b *reqBody
}

func (t touchReader) Read(p []byte) (int, error) {
	t.b.touched.Store(true)
	return t.r.Read(p)
}

func (t touchReader) Close() error { return nil }

func outRequest(ctx context.Context, r *http.Request, u *upstreamState, body *reqBody, reqID string) *http.Request {
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.Close = false
	out.URL.Scheme = u.URL.Scheme
	out.URL.Host = u.URL.Host
	if p := strings.TrimSuffix(u.URL.Path, "/"); p != "" {
		out.URL.Path = p + r.URL.Path
		if r.URL.RawPath != "" {
			out.URL.RawPath = strings.TrimSuffix(u.URL.EscapedPath(), "/") + r.URL.RawPath
		}
	}
	if u.RewriteHost {
		out.Host = u.URL.Host
	}
	switch {
	case body.none:
		out.Body, out.ContentLength, out.GetBody = nil, 0, nil
		if r.ContentLength == 0 && r.Body != nil && r.Body != http.NoBody {
			out.Body = http.NoBody
		}
	case body.replayable():
		buf := body.buf
		out.Body = io.NopCloser(bytes.NewReader(buf))
		out.ContentLength = int64(len(buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	default:
		out.Body = touchReader{r: body.stream, b: body}
		out.ContentLength = body.length
		out.GetBody = nil
	}
	removeHopHeaders(out.Header)
	if httpHeaderHasToken(r.Header, "Te", "trailers") {
		out.Header.Set("Te", "trailers")
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // not Go's default
	}
	out.Header.Set(HeaderRequestID, reqID)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	return out
}

// hopHeaders are removed in both directions (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for _, sf := range strings.Split(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

func httpHeaderHasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k], vv...)
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var _ http.Handler = (*Handler)(nil)
