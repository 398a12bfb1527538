package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrRateLimited is matched (errors.Is) by every *RateLimitError.
var ErrRateLimited = errors.New("cloudflare: rate limited")

// RateLimitError says the request was not sent, or was refused with 429, and when to try again.
type RateLimitError struct {
	// RetryAfter is how long to wait before the next request can go out.
	RetryAfter time.Duration
	// Budget is true when our own budget, not Cloudflare, is what is exhausted.
	Budget bool
}

func (e *RateLimitError) Error() string {
	who := "cloudflare answered 429"
	if e.Budget {
		who = "request budget exhausted"
	}
	return fmt.Sprintf("cloudflare: rate limited (%s), retry after %s", who, e.RetryAfter.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Results counted by constellation_dns_cloudflare_requests_total.
const (
	ResultOK           = "ok"
	ResultClientError  = "client_error"
	ResultRateLimited  = "rate_limited"
	ResultServerError  = "server_error"
	ResultTimeout      = "timeout"
	ResultNetworkError = "network_error"
)

// transport spends the budget, honours Retry-After and retries 5xx, timeouts and network errors.
type transport struct {
	base    http.RoundTripper
	budget  *Budget
	clock   Clock
	cfg     Config
	log     *slog.Logger
	results *prometheus.CounterVec

	mu sync.Mutex
	// guarded by mu:
	pausedUntil time.Time
}

func (t *transport) pause(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until := t.clock.Now().Add(d); until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
}

// PausedFor returns how long requests are held back by the last 429.
func (t *transport) pausedFor() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(0, t.pausedUntil.Sub(t.clock.Now()))
}

// waitTurn waits out any 429 pause, then takes a token from the budget.
func (t *transport) waitTurn(ctx context.Context) error {
	for range 100 {
		if d := t.pausedFor(); d > 0 {
			if exceedsDeadline(ctx, d) {
				return &RateLimitError{RetryAfter: d}
			}
			if err := t.clock.Sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		if err := t.budget.Take(ctx); err != nil {
			return err
		}
		if t.pausedFor() == 0 { // no 429 arrived while we waited for the token
			return nil
		}
	}
	return &RateLimitError{RetryAfter: t.pausedFor()}
}

func idempotent(method string) bool {
	return method != http.MethodPost
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		if err := t.waitTurn(ctx); err != nil {
			return nil, err
		}
		r := req
		if attempt > 0 && req.Body != nil {
			if req.GetBody == nil {
				return nil, errors.New("cloudflare: cannot retry a request without GetBody")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		actx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
		resp, err := t.base.RoundTrip(r.WithContext(actx))
		last := attempt >= t.cfg.MaxRetries
		switch {
		case err != nil:
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			result := ResultNetworkError
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				result = ResultTimeout
			}
			t.count(req, result)
			if last || !idempotent(req.Method) {
				return nil, fmt.Errorf("cloudflare: %s %s: %s", req.Method, req.URL.Path, result)
			}
			if err := t.backoff(ctx, req, attempt, result); err != nil {
				return nil, err
			}
		case resp.StatusCode == http.StatusTooManyRequests:
			d := parseRetryAfter(resp.Header.Get("Retry-After"), t.clock.Now(), t.cfg.DefaultRetryAfter, t.cfg.MaxRetryAfter)
			drain(resp)
			cancel()
			t.count(req, ResultRateLimited)
			t.pause(d)
			t.log.Info("cloudflare rate limited us", "method", req.Method, "path", req.URL.Path, "retryAfter", d, "attempt", attempt)
			if last {
				return nil, &RateLimitError{RetryAfter: d}
			}
		case resp.StatusCode >= 500:
			t.count(req, ResultServerError)
			drain(resp)
			cancel()
			if last {
				return nil, fmt.Errorf("cloudflare: %s %s: HTTP %d", req.Method, req.URL.Path, resp.StatusCode)
			}
			if err := t.backoff(ctx, req, attempt, ResultServerError); err != nil {
				return nil, err
			}
		default:
			if resp.StatusCode >= 400 {
				t.count(req, ResultClientError)
			} else {
				t.count(req, ResultOK)
			}
			resp.Body = cancelOnClose{resp.Body, cancel}
			return resp, nil
		}
	}
}

func (t *transport) count(req *http.Request, result string) {
	t.results.WithLabelValues(req.Method, result).Inc()
}

func (t *transport) backoff(ctx context.Context, req *http.Request, attempt int, why string) error {
	d := t.cfg.MinBackoff << min(attempt, 20)
	if d > t.cfg.MaxBackoff || d <= 0 {
		d = t.cfg.MaxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) // jitter in [d/2, d]
	t.log.Debug("cloudflare request failed, backing off", "method", req.Method, "path", req.URL.Path, "result", why, "backoff", d, "attempt", attempt)
	if exceedsDeadline(ctx, d) {
		return fmt.Errorf("cloudflare: %s %s: %s, no time left to retry", req.Method, req.URL.Path, why)
	}
	return t.clock.Sleep(ctx, d)
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date. Missing, invalid or
// negative values give def; the result is capped at max.
func parseRetryAfter(v string, now time.Time, def, max time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	d := def
	if v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			if secs >= 0 {
				d = time.Duration(min(secs, int64(max/time.Second)+1)) * time.Second
			}
		} else if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
			d = max
		} else if at, err := http.ParseTime(v); err == nil {
			d = at.Sub(now)
			if d < 0 {
				d = 0
			}
		}
	}
	if d > max {
		d = max
	}
	return d
}
