package cloudflare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare/cloudflaretest"
	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

const secretToken = "s3cr3t-T0KEN-never-shown"

type env struct {
	fake  *fake.Server
	url   string
	stop  func() // closes the fake, waiting for its outstanding requests (httptest.Server.Close)
	clock *cloudflaretest.StepClock
	c     *cloudflare.Client
	zone  string
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, cfg cloudflare.Config) *env {
	t.Helper()
	clock := cloudflaretest.NewStepClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := fake.New(fake.WithToken(secretToken), fake.WithClock(clock.Now))
	s.AddZone("example.com")
	url, stop := s.Start()
	t.Cleanup(stop)
	cfg.APIURL, cfg.Clock = url, clock
	logs := &bytes.Buffer{}
	c, err := cloudflare.New(cloudflare.NewToken(secretToken), cfg,
		cloudflare.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	zid, err := c.ZoneID(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), secretToken) {
			t.Errorf("the token appeared in the logs")
		}
	})
	return &env{fake: s, url: url, stop: stop, clock: clock, c: c, zone: zid, logs: logs}
}

func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte(secretToken+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := cloudflare.ReadTokenFile(p)
	if !errors.Is(err, cloudflare.ErrInsecureTokenFile) {
		t.Fatalf("0644 file: want ErrInsecureTokenFile, got %v", err)
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		tok, err := cloudflare.ReadTokenFile(p)
		if err != nil || tok.Empty() {
			t.Fatalf("mode %o: %v", mode, err)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", tok)
		js, _ := json.Marshal(map[string]any{"t": tok})
		for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), buf.String(), string(js)} {
			if strings.Contains(s, secretToken) {
				t.Fatalf("token shown: %s", s)
			}
		}
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	if _, err := cloudflare.ReadTokenFile(empty); err == nil {
		t.Fatal("empty token file accepted")
	}
}

func TestConfigRefusesBudgetOverCloudflareLimit(t *testing.T) {
	_, err := cloudflare.New(cloudflare.NewToken("x"), cloudflare.Config{Requests: 1200, Per: 5 * time.Minute, Burst: 10})
	if err == nil {
		t.Fatal("a budget allowing 1,210 requests in 5m was accepted")
	}
	if d := cloudflare.DefaultConfig(); d.WorstCaseWindow() > 1000 {
		t.Fatalf("default budget allows %.0f per 5m", d.WorstCaseWindow())
	}
}

func TestCRUDAndPagination(t *testing.T) {
	e := newEnv(t, cloudflare.Config{PageSize: 5})
	ctx := context.Background()
	for i := range 12 {
		_, err := e.c.CreateRecord(ctx, e.zone, cloudflare.Record{Type: "A", Name: "web.example.com", Content: fmt.Sprintf("10.0.0.%d", i), TTL: 60, Comment: "constellation:test/web"})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.fake.ResetCalls()
	recs, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{Name: "web.example.com"})
	if err != nil || len(recs) != 12 {
		t.Fatalf("list: %v %d", err, len(recs))
	}
	if n := e.fake.CallCount(http.MethodGet, fake.PatternRecords); n != 3 {
		t.Fatalf("12 records, page size 5: %d list calls, want 3", n)
	}
	r := recs[0]
	r.Content = "10.1.1.1"
	r.TTL = 120
	up, err := e.c.UpdateRecord(ctx, e.zone, r)
	if err != nil || up.Content != "10.1.1.1" || up.TTL != 120 || up.Comment != r.Comment || up.ID != r.ID {
		t.Fatalf("update: %v %+v", err, up)
	}
	_, err = e.c.CreateRecord(ctx, e.zone, cloudflare.Record{Type: "A", Name: "web.example.com", Content: "10.0.0.3", TTL: 60})
	var apiErr *cloudflare.APIError
	if !errors.Is(err, cloudflare.ErrRecordConflict) || !errors.As(err, &apiErr) || !apiErr.HasCode(81058) {
		t.Fatalf("identical record: %v", err)
	}
	if err := e.c.DeleteRecord(ctx, e.zone, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeleteRecord(ctx, e.zone, r.ID); err != nil {
		t.Fatalf("deleting a deleted record: %v", err)
	}
	if _, err := e.c.ZoneID(ctx, "nope.org"); !errors.Is(err, cloudflare.ErrZoneNotFound) {
		t.Fatalf("missing zone: %v", err)
	}
	_, err = e.c.ListRecords(ctx, strings.Repeat("b", 32), cloudflare.Filter{})
	if !errors.Is(err, cloudflare.ErrZoneNotFound) {
		t.Fatalf("unknown zone id: %v", err)
	}
}

func TestErrorsNeverShowToken(t *testing.T) {
	e := newEnv(t, cloudflare.Config{})
	e.fake.RevokeToken(secretToken)
	_, err := e.c.ListRecords(context.Background(), e.zone, cloudflare.Filter{})
	if !errors.Is(err, cloudflare.ErrAuth) {
		t.Fatalf("revoked token: %v", err)
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(fmt.Sprintf("%#v", err), secretToken) {
		t.Fatalf("token in error: %v", err)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	e := newEnv(t, cloudflare.Config{MaxRetries: 4})
	ctx := context.Background()
	e.fake.ResetCalls()
	start := e.clock.Now()
	e.fake.FailNext(3, http.StatusTooManyRequests, 7*time.Second)
	if _, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{}); err != nil {
		t.Fatalf("after 3 × 429: %v", err)
	}
	calls := e.fake.Calls()
	if len(calls) != 4 {
		t.Fatalf("%d calls, want 4", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Time.Sub(calls[i-1].Time); gap < 7*time.Second {
			t.Fatalf("call %d came %s after a 429 asking for 7s", i, gap)
		}
	}
	if el := e.clock.Now().Sub(start); el < 21*time.Second {
		t.Fatalf("elapsed %s, want ≥ 21s", el)
	}
	if got := counter(t, e.c, "GET", cloudflare.ResultRateLimited); got != 3 {
		t.Fatalf("rate_limited counter %v, want 3", got)
	}

	// More 429s than retries: a *RateLimitError, no crash.
	e.fake.FailNext(10, http.StatusTooManyRequests, time.Second)
	_, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{})
	var rl *cloudflare.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, cloudflare.ErrRateLimited) || rl.RetryAfter != time.Second {
		t.Fatalf("storm: %v", err)
	}

}

// TestPauseOutlastsDeadline: while a 429's pause lasts longer than the caller's deadline, calls
// fail at once with a *RateLimitError and send nothing.
func TestPauseOutlastsDeadline(t *testing.T) {
	e := newEnv(t, cloudflare.Config{MaxRetries: 1})
	ctx := context.Background()
	e.fake.FailNext(2, http.StatusTooManyRequests, 120*time.Second)
	_, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{})
	var rl *cloudflare.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("two 429s with one retry: %v", err)
	}
	n := len(e.fake.Calls())
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = e.c.ListRecords(dctx, e.zone, cloudflare.Filter{})
	if !errors.As(err, &rl) || rl.RetryAfter != 120*time.Second {
		t.Fatalf("during the pause: %v", err)
	}
	if len(e.fake.Calls()) != n {
		t.Fatal("a request went out during the pause")
	}
	// Without a deadline the call waits the pause out and succeeds.
	if _, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{}); err != nil {
		t.Fatal(err)
	}
}

func TestServerErrorsAndTimeouts(t *testing.T) {
	e := newEnv(t, cloudflare.Config{MaxRetries: 3, RequestTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	e.fake.ResetCalls()
	e.fake.FailNext(2, http.StatusInternalServerError, 0)
	if _, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{}); err != nil {
		t.Fatalf("after 2 × 500: %v", err)
	}
	e.fake.FailNext(-1, http.StatusBadGateway, 0)
	_, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{})
	if !errors.Is(err, cloudflare.ErrUnavailable) {
		t.Fatalf("502 forever: %v", err)
	}
	e.fake.ClearFailures()
	if n := e.fake.CallCount(http.MethodGet, fake.PatternRecords); n != 3+4 {
		t.Fatalf("%d calls, want 7 (3, then 1 + 3 retries)", n)
	}

	e.fake.ResetCalls()
	e.fake.SetLatency(time.Second)
	_, err = e.c.ListRecords(ctx, e.zone, cloudflare.Filter{})
	if err == nil || strings.Contains(err.Error(), secretToken) {
		t.Fatalf("timeouts: %v", err)
	}
	_, err = e.c.CreateRecord(ctx, e.zone, cloudflare.Record{Type: "A", Name: "x.example.com", Content: "10.0.0.1", TTL: 60})
	if err == nil {
		t.Fatal("create during timeouts succeeded")
	}
	t.Logf("create during timeouts: %v", err)
	e.fake.SetLatency(0)
	// Closing the fake waits for the slow handlers the client gave up on to finish and log
	// their calls: the counts below are final.
	e.stop()
	if get, post := e.fake.CallCount(http.MethodGet, ""), e.fake.CallCount(http.MethodPost, ""); get != 4 || post != 1 {
		t.Fatalf("after timeouts: %d GET (want 4: retried), %d POST (want 1: not retried)", get, post)
	}
}

// TestBudgetRespected fires more requests than the budget holds and checks, from the fake's own
// call log, that no window saw more than the budget allows.
func TestBudgetRespected(t *testing.T) {
	cfg := cloudflare.Config{Requests: 30, Per: 30 * time.Second, Burst: 10}
	e := newEnv(t, cfg)
	ctx := context.Background()
	e.fake.ResetCalls()
	start := e.clock.Now()
	const n = 100
	for range n {
		if _, err := e.c.ListRecords(ctx, e.zone, cloudflare.Filter{}); err != nil {
			t.Fatal(err)
		}
	}
	calls := e.fake.Calls()
	if len(calls) != n {
		t.Fatalf("%d calls, want %d", len(calls), n)
	}
	window := 30 * time.Second
	most := 0
	for i := range calls {
		j := i
		for j < len(calls) && calls[j].Time.Sub(calls[i].Time) < window {
			j++
		}
		most = max(most, j-i)
	}
	if most > 10+30 {
		t.Fatalf("%d calls in one %s window, budget allows %d", most, window, 40)
	}
	el := e.clock.Now().Sub(start)
	t.Logf("%d requests took %s of (simulated) time; busiest %s window: %d requests; budget left %.1f", n, el, window, most, e.c.BudgetRemaining())
	if el < time.Duration(n-10-1)*time.Second {
		t.Fatalf("%d requests in %s: faster than 1/s after the burst", n, el)
	}
}

func TestBudgetDeadline(t *testing.T) {
	clock := cloudflaretest.NewStepClock(time.Now())
	b := cloudflare.NewBudget(1, time.Hour, 1, clock)
	if err := b.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := b.Take(ctx)
	var rl *cloudflare.RateLimitError
	if !errors.As(err, &rl) || !rl.Budget || rl.RetryAfter < 59*time.Minute {
		t.Fatalf("want a budget RateLimitError of ~1h, got %v", err)
	}
	if r := b.Remaining(); r < -0.01 || r > 0.01 {
		t.Fatalf("a refused wait kept its reservation: remaining %f", r)
	}
}

func BenchmarkListRecords(b *testing.B) {
	s := fake.New(fake.WithToken(secretToken))
	s.AddZone("example.com")
	for i := range 50 {
		_, _ = s.PutRecord("example.com", fake.Record{Type: "A", Name: fmt.Sprintf("n%d", i), Content: "10.0.0.1", TTL: 60})
	}
	url, stop := s.Start()
	defer stop()
	// The step clock makes budget waits free, so this measures the client and the fake only.
	c, err := cloudflare.New(cloudflare.NewToken(secretToken), cloudflare.Config{APIURL: url, Clock: cloudflaretest.NewStepClock(time.Now())},
		cloudflare.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	zid, _ := c.ZoneID(ctx, "example.com")
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.ListRecords(ctx, zid, cloudflare.Filter{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBudgetTake(b *testing.B) {
	bu := cloudflare.NewBudget(900, 5*time.Minute, 100, cloudflaretest.NewStepClock(time.Now()))
	ctx := context.Background()
	for b.Loop() {
		_ = bu.Take(ctx)
	}
}

// counter reads constellation_dns_cloudflare_requests_total{method, result}.
func counter(t *testing.T, c *cloudflare.Client, method, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "constellation_dns_cloudflare_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labels(m)["method"] == method && labels(m)["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// shiftingTransport adds a record that sorts first after the first page is answered, as an
// operator's edit between two page requests would: offset pagination then repeats the last
// record of page 1 at the top of page 2.
type shiftingTransport struct {
	fake *fake.Server
	done bool
}

func (s *shiftingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && !s.done && r.Method == http.MethodGet && r.URL.Query().Get("page") == "1" && strings.HasSuffix(r.URL.Path, "/dns_records") {
		s.done = true
		if _, perr := s.fake.PutRecord("example.com", fake.Record{Type: "A", Name: "a", Content: "192.0.2.1", TTL: 60}); perr != nil {
			return nil, perr
		}
	}
	return res, err
}

// TestListRecordsShiftedPages: a record appearing between two page requests must not make a
// record show twice in the listing (a planner seeing our record twice would keep one copy and
// delete the other, which is the same record).
func TestListRecordsShiftedPages(t *testing.T) {
	e := newEnv(t, cloudflare.Config{})
	for i := range 7 {
		if _, err := e.fake.PutRecord("example.com", fake.Record{Type: "A", Name: fmt.Sprintf("r%d", i), Content: fmt.Sprintf("10.0.0.%d", i), TTL: 60}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := cloudflare.New(cloudflare.NewToken(secretToken), cloudflare.Config{APIURL: e.url, PageSize: 5, Clock: e.clock},
		cloudflare.WithTransport(&shiftingTransport{fake: e.fake}))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.ListRecords(context.Background(), e.zone, cloudflare.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.ID] {
			t.Fatalf("record %s (%s) listed twice across pages", r.ID, r.Name)
		}
		seen[r.ID] = true
	}
	if len(recs) < 7 {
		t.Fatalf("%d records listed, want at least the 7 there before", len(recs))
	}
}
