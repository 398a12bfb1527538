package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is where the load generator sends requests: a load balancer's web entry point, a Host
// header and a path. Expect, when set, must appear in every 200 answer's body.
type Target struct {
	Name   string // for reports, e.g. "n1/web"
	URL    string // http://IP:80
	Host   string
	Path   string
	Expect string
}

// Failure is one failed request.
type Failure struct {
	Time   time.Time
	Target string
	Reason string
}

// LoadStats counts what the generator saw.
type LoadStats struct {
	Sent, OK, Failed int64
	Duration         time.Duration
	// Failures holds the first 1000 failures in order.
	Failures []Failure
	// Bodies counts the distinct first words after the status (e.g. "echo 1", "echo 2").
	Bodies map[string]int64
}

// String is a one-line summary.
func (s LoadStats) String() string {
	var reasons []string
	counts := map[string]int{}
	for _, f := range s.Failures {
		counts[f.Reason]++
	}
	for r, k := range counts {
		reasons = append(reasons, fmt.Sprintf("%dx %s", k, r))
	}
	sort.Strings(reasons)
	out := fmt.Sprintf("%d requests in %s, %d ok, %d failed", s.Sent, s.Duration.Round(time.Millisecond), s.OK, s.Failed)
	if len(s.Failures) > 0 {
		out += fmt.Sprintf(" (first at %s, last at %s: %s)", s.Failures[0].Time.Format("15:04:05.000"),
			s.Failures[len(s.Failures)-1].Time.Format("15:04:05.000"), strings.Join(reasons, "; "))
	}
	return out
}

// Load sends steady traffic: Rate requests per second to each target, each request with its own
// deadline, never skipping a tick (a request that cannot start because too many are in flight
// counts as failed).
type Load struct {
	targets []Target
	rate    int
	timeout time.Duration
	client  *http.Client
	start   time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sem     chan struct{}

	sent, ok, failed atomic.Int64

	mu sync.Mutex
	// guarded by mu:
	failures []Failure
	bodies   map[string]int64
	end      time.Time
}

// StartLoad starts rate requests per second to each target, each with the given timeout
// (default 2s), until Stop.
func StartLoad(targets []Target, rate int, timeout time.Duration) *Load {
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{targets: targets, rate: rate, timeout: timeout, cancel: cancel, start: time.Now(),
		sem: make(chan struct{}, 256), bodies: map[string]int64{},
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		}}}
	for _, t := range targets {
		l.wg.Add(1)
		go l.drive(ctx, t)
	}
	return l
}

func (l *Load) drive(ctx context.Context, t Target) {
	defer l.wg.Done()
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.sent.Add(1)
		select {
		case l.sem <- struct{}{}:
		default:
			l.fail(t, "generator overloaded: too many requests in flight")
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.sem }()
			l.one(t)
		}()
	}
}

func (l *Load) one(t Target) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+t.Path, nil)
	req.Host = t.Host
	resp, err := l.client.Do(req)
	if err != nil {
		l.fail(t, shortErr(err))
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case err != nil:
		l.fail(t, "read body: "+shortErr(err))
	case resp.StatusCode != http.StatusOK:
		l.fail(t, fmt.Sprintf("status %d", resp.StatusCode))
	case t.Expect != "" && !strings.Contains(string(body), t.Expect):
		l.fail(t, fmt.Sprintf("unexpected body %.40q", body))
	default:
		l.ok.Add(1)
		f := strings.Fields(string(body))
		key := strings.Join(f[:min(2, len(f))], " ")
		l.mu.Lock()
		l.bodies[key]++
		l.mu.Unlock()
	}
}

func shortErr(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "i/o timeout", "deadline exceeded", "no route to host", "EOF"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

func (l *Load) fail(t Target, reason string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 1000 {
		l.failures = append(l.failures, Failure{Time: time.Now(), Target: t.Name, Reason: reason})
	}
}

// Stats returns the counts so far (in-flight requests not yet counted as ok or failed).
func (l *Load) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.end
	if end.IsZero() {
		end = time.Now()
	}
	b := make(map[string]int64, len(l.bodies))
	for k, v := range l.bodies {
		b[k] = v
	}
	return LoadStats{Sent: l.sent.Load(), OK: l.ok.Load(), Failed: l.failed.Load(), Duration: end.Sub(l.start),
		Failures: append([]Failure(nil), l.failures...), Bodies: b}
}

// Stop stops sending, waits for requests in flight and returns the final counts.
func (l *Load) Stop() LoadStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	if l.end.IsZero() {
		l.end = time.Now()
	}
	l.mu.Unlock()
	return l.Stats()
}
