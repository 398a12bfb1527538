package httpproxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled service (Entry.Service) and, where it applies, upstream (Upstream.Name):
// both bounded by the Services and their upstreams, never by request data.
type metrics struct {
	requests      *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	failovers     *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	budgetOut     *prometheus.CounterVec
	breakerState  *prometheus.GaugeVec
	breakerChange *prometheus.CounterVec
	parks         *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	upstreamTime  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_requests_total",
			Help: "Requests answered, by the upstream that answered (none: the proxy did) and the status code sent downstream.",
		}, []string{"service", "upstream", "code"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_attempts_total",
			Help: "Attempts on an upstream, by outcome: ok, never_sent, declined (403/429/503 in failover.on), ambiguous (other failures), client_gone.",
		}, []string{"service", "upstream", "outcome"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_failovers_total",
			Help: "Requests retried on another upstream, by what triggered it (connectFailure, reset, timeout or the status code).",
		}, []string{"service", "trigger"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_retries_skipped_total",
			Help: "Failures passed to the client although failover.on matched, by reason: non_idempotent, body_streamed, budget, attempts, no_upstream.",
		}, []string{"service", "reason"}),
		budgetOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_retry_budget_exhausted_total",
			Help: "Retries refused because the retry budget was spent.",
		}, []string{"service"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_proxy_breaker_state",
			Help: "An upstream's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"service", "upstream"}),
		breakerChange: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_breaker_transitions_total",
			Help: "Circuit breaker state changes, by the state entered.",
		}, []string{"service", "upstream", "to"}),
		parks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_proxy_retry_after_parks_total",
			Help: "Upstreams parked by a Retry-After on a 429 or 503.",
		}, []string{"service", "upstream"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "constellation_proxy_request_duration_seconds",
			Help:    "Time from a request's arrival to its response headers going downstream, every attempt included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"service"}),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "constellation_proxy_upstream_header_seconds",
			Help:    "Time from sending an attempt to its response headers, by upstream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"service", "upstream"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.attempts, m.failovers, m.skipped, m.budgetOut, m.breakerState,
		m.breakerChange, m.parks, m.duration, m.upstreamTime} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("http proxy metrics: already registered (one Proxy per Registerer)")
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) deleteService(service string) {
	l := prometheus.Labels{"service": service}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.requests, m.attempts, m.failovers, m.skipped,
		m.budgetOut, m.breakerState, m.breakerChange, m.parks, m.duration, m.upstreamTime} {
		v.DeletePartialMatch(l)
	}
}

func stateValue(s BreakerState) float64 {
	switch s {
	case StateHalfOpen:
		return 1
	case StateOpen:
		return 2
	}
	return 0
}
