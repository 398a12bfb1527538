package httpproxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/constellation-sh/constellation/internal/nettest"
)

// farmUpstream is one upstream of the in-process farm: an HTTP server (or a raw TCP one for
// the misbehaving kinds) that counts the requests it got.
type farmUpstream struct {
	url   string
	count atomic.Int64
	close func()
}

func (f *farmUpstream) u() *url.URL { u, _ := url.Parse(f.url); return u }

func httpUpstream(t *testing.T, h func(f *farmUpstream, w http.ResponseWriter, r *http.Request)) *farmUpstream {
	t.Helper()
	f := &farmUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.count.Add(1)
		h(f, w, r)
	}))
	f.url, f.close = srv.URL, srv.Close
	t.Cleanup(srv.Close)
	return f
}

// rawUpstream reads each request in full and then does raw(conn): for resets and broken
// bodies that net/http will not produce.
func rawUpstream(t *testing.T, raw func(c net.Conn)) *farmUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &farmUpstream{url: "http://" + ln.Addr().String(), close: func() { ln.Close() }}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				f.count.Add(1)
				raw(c)
			}()
		}
	}()
	return f
}

// goodUpstream answers 200 "good:<body length>".
func goodUpstream(t *testing.T) *farmUpstream {
	return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Seen-Request-Id", r.Header.Get(HeaderRequestID))
		fmt.Fprintf(w, "good:%d", n)
	})
}

const (
	testPerTry    = time.Second
	testFirstByte = 250 * time.Millisecond
	testMaxReplay = 1024
)

func farm(t *testing.T, kind string) *farmUpstream {
	switch kind {
	case "200":
		return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "x")
		})
	case "403", "500":
		code, _ := strconv.Atoi(kind)
		return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, "x")
		})
	case "429":
		return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, "x")
		})
	case "hang":
		return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		})
	case "reset":
		return rawUpstream(t, func(c net.Conn) {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
		})
	case "midbody":
		return rawUpstream(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		})
	case "slow":
		return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(4 * testFirstByte):
				io.WriteString(w, "x")
			case <-r.Context().Done():
			}
		})
	case "sse":
		return httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond) // the upstream's own pace
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
			io.WriteString(w, "data: 2\n\n")
		})
	case "refused":
		return &farmUpstream{url: "http://" + nettest.RefusedAddr(t)}
	}
	t.Fatalf("unknown farm kind %q", kind)
	return nil
}

func testPolicy() Policy {
	p := DefaultPolicy()
	p.PerTryTimeout, p.FirstByteTimeout, p.MaxReplayBody = testPerTry, testFirstByte, testMaxReplay
	p.RetryBudget = -1
	p.Breaker.ConsecutiveFailures, p.Breaker.FailureRatio = 0, 0
	return p
}

type testHandler struct {
	h   *Handler
	srv *httptest.Server
	reg *prometheus.Registry
}

func newTestHandler(t *testing.T, cfg HandlerConfig, p Policy, ups ...Upstream) *testHandler {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.metrics = m
	if cfg.Service == "" {
		cfg.Service = "svc"
	}
	h := NewHandler(cfg)
	if err := h.Set(p, ups); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testHandler{h: h, srv: srv, reg: reg}
}

// metricSum adds every series of one metric whose labels include match.
func (th *testHandler) metricSum(t *testing.T, name string, match map[string]string) float64 {
	t.Helper()
	mfs, err := th.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				if !hasLabel(m, k, v) {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func up(name string, f *farmUpstream, prio int) Upstream {
	return Upstream{Name: name, URL: f.u(), Priority: prio, Healthy: true, RewriteHost: true}
}

// requestKind builds one of the table's requests.
type requestKind struct {
	name string
	make func(base string) *http.Request
}

var requestKinds = []requestKind{
	{"GET", func(base string) *http.Request { r, _ := http.NewRequest("GET", base+"/p", nil); return r }},
	{"POST", func(base string) *http.Request {
		r, _ := http.NewRequest("POST", base+"/p", strings.NewReader("hello"))
		return r
	}},
	{"POST+key", func(base string) *http.Request {
		r, _ := http.NewRequest("POST", base+"/p", strings.NewReader("hello"))
		r.Header.Set("Idempotency-Key", "k1")
		return r
	}},
	// PUT is idempotent, but its 4 KiB body is above maxReplayBody: streamed, not replayed.
	{"PUT large", func(base string) *http.Request {
		r, _ := http.NewRequest("PUT", base+"/p", bytes.NewReader(make([]byte, 4*testMaxReplay)))
		return r
	}},
	// A chunked upload of unknown length above maxReplayBody, with a key: streamed too.
	{"POST+key streamed", func(base string) *http.Request {
		r, _ := http.NewRequest("POST", base+"/p", io.MultiReader(bytes.NewReader(make([]byte, 4*testMaxReplay))))
		r.ContentLength = -1
		r.Header.Set("Idempotency-Key", "k2")
		return r
	}},
}

type want struct {
	from     string // "x" or "good"
	status   int
	attempts int
	bodyErr  bool   // the client sees a truncated body
	body     string // "" : not checked beyond from
}

func TestFarm(t *testing.T) {
	good := func() want { return want{from: "good", status: 200, attempts: 2} }
	x := func(code int) want { return want{from: "x", status: code, attempts: 1} }
	// Expected results per upstream behaviour, in the order of requestKinds:
	// GET, POST, POST+key, PUT large, POST+key streamed.
	table := map[string][5]want{
		"refused": {good(), good(), good(), good(), good()}, // never sent: always retried
		"200":     {x(200), x(200), x(200), x(200), x(200)},
		"403":     {good(), good(), good(), x(403), x(403)}, // declined: any method, if the body can be replayed
		"429":     {good(), good(), good(), x(429), x(429)},
		"500":     {good(), x(500), good(), x(500), x(500)}, // ambiguous: idempotent or keyed only
		"hang":    {good(), x(504), good(), x(504), x(504)},
		"reset":   {good(), x(502), good(), x(502), x(502)},
		"midbody": { // the first byte went downstream: never replayed
			{from: "x", status: 200, attempts: 1, bodyErr: true}, {from: "x", status: 200, attempts: 1, bodyErr: true},
			{from: "x", status: 200, attempts: 1, bodyErr: true}, {from: "x", status: 200, attempts: 1, bodyErr: true},
			{from: "x", status: 200, attempts: 1, bodyErr: true}},
		// Headers at once, first byte late: held and failed over when a replay is allowed,
		// streamed through when it is not.
		"slow": {good(), {from: "x", status: 200, attempts: 1, body: "x"}, good(),
			{from: "x", status: 200, attempts: 1, body: "x"}, {from: "x", status: 200, attempts: 1, body: "x"}},
		"sse": {
			{from: "x", status: 200, attempts: 1, body: "data: 1\n\ndata: 2\n\n"}, {from: "x", status: 200, attempts: 1, body: "data: 1\n\ndata: 2\n\n"},
			{from: "x", status: 200, attempts: 1, body: "data: 1\n\ndata: 2\n\n"}, {from: "x", status: 200, attempts: 1, body: "data: 1\n\ndata: 2\n\n"},
			{from: "x", status: 200, attempts: 1, body: "data: 1\n\ndata: 2\n\n"}},
	}
	for _, kind := range []string{"refused", "200", "403", "429", "500", "hang", "reset", "midbody", "slow", "sse"} {
		for ki, rk := range requestKinds {
			w := table[kind][ki]
			t.Run(kind+"/"+rk.name, func(t *testing.T) {
				t.Parallel()
				xf, gf := farm(t, kind), goodUpstream(t)
				th := newTestHandler(t, HandlerConfig{}, testPolicy(), up("x", xf, 0), up("good", gf, 1))
				resp, err := th.srv.Client().Do(rk.make(th.srv.URL))
				if err != nil {
					t.Fatal(err)
				}
				body, berr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := resp.Header.Get(HeaderUpstream); got != w.from {
					t.Errorf("%s = %q, want %q (status %d, body %q)", HeaderUpstream, got, w.from, resp.StatusCode, body)
				}
				if resp.StatusCode != w.status {
					t.Errorf("status %d, want %d (body %q)", resp.StatusCode, w.status, body)
				}
				if resp.Header.Get(HeaderRequestID) == "" {
					t.Errorf("no %s on the response", HeaderRequestID)
				}
				if got := th.metricSum(t, "constellation_proxy_attempts_total", nil); int(got) != w.attempts {
					t.Errorf("attempts %v, want %d", got, w.attempts)
				}
				if (berr != nil) != w.bodyErr {
					t.Errorf("body error %v, want error %v", berr, w.bodyErr)
				}
				switch {
				case w.body != "":
					if string(body) != w.body {
						t.Errorf("body %q, want %q", body, w.body)
					}
				case w.from == "good":
					req := rk.make("http://unused")
					n := 0
					if req.Body != nil {
						b, _ := io.ReadAll(req.Body)
						n = len(b)
					}
					if want := fmt.Sprintf("good:%d", n); string(body) != want {
						t.Errorf("body %q, want %q (the replayed request body reached the upstream whole)", body, want)
					}
				}
			})
		}
	}
}

func TestRequestIDPropagated(t *testing.T) {
	gf := goodUpstream(t)
	th := newTestHandler(t, HandlerConfig{}, testPolicy(), up("good", gf, 0))
	req, _ := http.NewRequest("GET", th.srv.URL, nil)
	req.Header.Set(HeaderRequestID, "abc-123")
	resp, err := th.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(HeaderRequestID) != "abc-123" || resp.Header.Get("X-Seen-Request-Id") != "abc-123" {
		t.Errorf("request id: response %q, upstream saw %q; want abc-123 both", resp.Header.Get(HeaderRequestID), resp.Header.Get("X-Seen-Request-Id"))
	}
	resp, err = th.srv.Client().Get(th.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get(HeaderRequestID); len(id) != 32 || resp.Header.Get("X-Seen-Request-Id") != id {
		t.Errorf("generated request id %q, upstream saw %q", id, resp.Header.Get("X-Seen-Request-Id"))
	}
}

func TestNoUpstreamAvailable(t *testing.T) {
	gf := goodUpstream(t)
	u := up("good", gf, 0)
	u.Healthy = false // e.g. its via egress is not EgressHealthy: never dialled directly
	th := newTestHandler(t, HandlerConfig{}, testPolicy(), u)
	resp, err := th.srv.Client().Get(th.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get(HeaderUpstream) != "none" || gf.count.Load() != 0 {
		t.Errorf("status %d upstream %q, good saw %d; want 503 none 0", resp.StatusCode, resp.Header.Get(HeaderUpstream), gf.count.Load())
	}
}

func get(t *testing.T, th *testHandler) (string, int) {
	t.Helper()
	resp, err := th.srv.Client().Get(th.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get(HeaderUpstream), resp.StatusCode
}

func TestRetryAfterParks(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1e9, 0))
	xf, gf := farm(t, "429"), goodUpstream(t) // Retry-After: 120
	th := newTestHandler(t, HandlerConfig{Clock: clk}, testPolicy(), up("x", xf, 0), up("good", gf, 1))
	if from, _ := get(t, th); from != "good" || xf.count.Load() != 1 {
		t.Fatalf("first request: from %q, x saw %d; want good, 1", from, xf.count.Load())
	}
	if from, _ := get(t, th); from != "good" || xf.count.Load() != 1 {
		t.Fatalf("parked: from %q, x saw %d; want good and x not asked again", from, xf.count.Load())
	}
	if p := th.h.Upstreams()[0].ParkedFor; p != 120*time.Second {
		t.Errorf("parked for %s, want 2m0s", p)
	}
	clk.Step(121 * time.Second)
	get(t, th)
	if xf.count.Load() != 2 {
		t.Errorf("after Retry-After: x saw %d, want 2", xf.count.Load())
	}
}

func TestBreakerTransitions(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1e9, 0))
	var failing atomic.Bool
	failing.Store(true)
	xf := httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
		}
	})
	gf := goodUpstream(t)
	p := testPolicy()
	p.Breaker = BreakerPolicy{ConsecutiveFailures: 3, OpenFor: 10 * time.Second, HalfOpenRequests: 1, Window: 10 * time.Second}
	th := newTestHandler(t, HandlerConfig{Clock: clk}, p, up("x", xf, 0), up("good", gf, 1))
	state := func() BreakerState { return th.h.Upstreams()[0].Breaker }
	for i := range 3 {
		if s := state(); s != StateClosed {
			t.Fatalf("before failure %d: %s, want closed", i+1, s)
		}
		if from, _ := get(t, th); from != "good" {
			t.Fatalf("request %d answered by %q", i+1, from)
		}
	}
	if s := state(); s != StateOpen {
		t.Fatalf("after 3 failures: %s, want open", s)
	}
	get(t, th)
	if xf.count.Load() != 3 {
		t.Fatalf("open breaker: x saw %d requests, want 3 (skipped)", xf.count.Load())
	}
	clk.Step(10*time.Second + time.Millisecond)
	if s := state(); s != StateHalfOpen {
		t.Fatalf("after openFor: %s, want half-open", s)
	}
	get(t, th) // the probe fails: open again
	if s := state(); s != StateOpen || xf.count.Load() != 4 {
		t.Fatalf("failed probe: %s, x saw %d; want open, 4", s, xf.count.Load())
	}
	clk.Step(10*time.Second + time.Millisecond)
	failing.Store(false)
	if from, _ := get(t, th); from != "x" {
		t.Fatalf("probe answered by %q, want x", from)
	}
	if s := state(); s != StateClosed {
		t.Fatalf("after a good probe: %s, want closed", s)
	}
	for to, n := range map[string]float64{"open": 2, "half-open": 2, "closed": 1} {
		if got := th.metricSum(t, "constellation_proxy_breaker_transitions_total", map[string]string{"upstream": "x", "to": to}); got != n {
			t.Errorf("transitions to %s: %v, want %v", to, got, n)
		}
	}
}

func TestBreakerFailureRatio(t *testing.T) {
	var n atomic.Int64
	xf := httpUpstream(t, func(_ *farmUpstream, w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 { // every other request fails
			w.WriteHeader(502)
		}
	})
	gf := goodUpstream(t)
	p := testPolicy()
	p.Breaker = BreakerPolicy{FailureRatio: 0.5, MinRequests: 10, Window: time.Minute, OpenFor: time.Minute}
	th := newTestHandler(t, HandlerConfig{}, p, up("x", xf, 0), up("good", gf, 1))
	for range 10 {
		get(t, th)
	}
	if s := th.h.Upstreams()[0].Breaker; s != StateOpen {
		t.Fatalf("after 5 of 10 failed: %s, want open", s)
	}
	before := xf.count.Load()
	for range 5 {
		if from, code := get(t, th); from != "good" || code != 200 {
			t.Fatalf("open: %q %d", from, code)
		}
	}
	if xf.count.Load() != before {
		t.Errorf("open breaker still sent %d requests to x", xf.count.Load()-before)
	}
}

func TestRetryBudget(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1e9, 0))
	xf, gf := farm(t, "500"), goodUpstream(t)
	p := testPolicy()
	p.RetryBudget = 20
	th := newTestHandler(t, HandlerConfig{Clock: clk}, p, up("x", xf, 0), up("good", gf, 1))
	const n = 1000
	failed := 0
	for range n {
		if _, code := get(t, th); code != 200 {
			failed++
		}
	}
	retries := n - failed
	// At most 20 % of the window's requests plus MinRetries: 300; at least 20 % of them.
	if retries > MinRetries+n*20/100 || retries < n*20/100 {
		t.Errorf("%d of %d requests retried, want between %d and %d", retries, n, n*20/100, MinRetries+n*20/100)
	}
	if got := th.metricSum(t, "constellation_proxy_retry_budget_exhausted_total", nil); int(got) != failed {
		t.Errorf("budget exhausted %v times, want %d", got, failed)
	}
	// A new window (10 s later) has budget again.
	clk.Step(11 * time.Second)
	if from, code := get(t, th); from != "good" || code != 200 {
		t.Errorf("next window: %q %d, want good 200", from, code)
	}
}

func TestNeverSentRetriesIgnoreBudget(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1e9, 0))
	xf, gf := farm(t, "refused"), goodUpstream(t)
	p := testPolicy()
	p.RetryBudget = 0
	th := newTestHandler(t, HandlerConfig{Clock: clk}, p, up("x", xf, 0), up("good", gf, 1))
	for i := range MinRetries + 20 {
		if from, code := get(t, th); from != "good" || code != 200 {
			t.Fatalf("request %d: %q %d; a request never sent is always retried", i, from, code)
		}
	}
}

func TestMaxAttempts(t *testing.T) {
	a, b, c := farm(t, "500"), farm(t, "500"), goodUpstream(t)
	p := testPolicy()
	p.MaxAttempts = 2
	th := newTestHandler(t, HandlerConfig{}, p, up("a", a, 0), up("b", b, 1), up("c", c, 2))
	if from, code := get(t, th); from != "b" || code != 500 || c.count.Load() != 0 {
		t.Errorf("%q %d, c saw %d; want b 500 after 2 attempts", from, code, c.count.Load())
	}
}

func TestOrder(t *testing.T) {
	mk := func(prio ...int) *handlerState {
		st := &handlerState{}
		for i, p := range prio {
			st.ups = append(st.ups, &upstreamState{Upstream: Upstream{Name: strconv.Itoa(i), Priority: p, Weight: 1}})
		}
		return st
	}
	h := NewHandler(HandlerConfig{})
	// priority: lower first; equal ones take turns.
	st := mk(1, 0, 0)
	st.policy.Order = OrderPriority
	seen := map[string]int{}
	for range 4 {
		o := h.order(st)
		seen[fmt.Sprint(o)]++
		if o[2] != 0 {
			t.Fatalf("priority order %v: the priority-1 upstream must come last", o)
		}
	}
	if seen["[1 2 0]"] != 2 || seen["[2 1 0]"] != 2 {
		t.Errorf("equal priorities did not alternate: %v", seen)
	}
	// leastLatency: the lowest average first.
	st = mk(0, 0, 0)
	st.policy.Order = OrderLeastLatency
	for i, l := range []float64{0.3, 0.1, 0.2} {
		st.ups[i].ewma.Store(mathFloat64bits(l))
	}
	if o := h.order(st); fmt.Sprint(o) != "[1 2 0]" {
		t.Errorf("leastLatency order %v, want [1 2 0]", o)
	}
	// weighted: shares follow the weights.
	st = mk(0, 0)
	st.policy.Order = OrderWeighted
	st.ups[0].Weight, st.ups[1].Weight = 3, 1
	first := 0
	for range 4000 {
		if h.order(st)[0] == 0 {
			first++
		}
	}
	if first < 2800 || first > 3200 {
		t.Errorf("weight 3 of 4 first in %d of 4000, want about 3000", first)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"99999999999999999999", MaxRetryAfter, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(time.Hour).Format(http.TimeFormat), MaxRetryAfter, true},
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s %v, want %s %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Wed, 21 Oct 2015 07:28:00 GMT", "", "-1", "1e9", "99999999999"} {
		f.Add(s)
	}
	now := time.Unix(1e9, 0)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || d > MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %s %v", s, d, ok)
		}
	})
}

func mathFloat64bits(f float64) uint64 { return math.Float64bits(f) }
