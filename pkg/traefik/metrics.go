// The provider's Prometheus metrics.

package traefik

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	renders       *prometheus.CounterVec
	renderSeconds prometheus.Histogram
	healthy       prometheus.Gauge
	lastSuccess   prometheus.Gauge
	configBytes   prometheus.Gauge
	routers       *prometheus.GaugeVec
	servers       prometheus.Gauge
	problems      prometheus.Gauge
	watchRestarts prometheus.Counter
	storeErrors   prometheus.Counter
	requests      *prometheus.CounterVec
	renderPanics  prometheus.Counter
	warmUpExpired prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "constellation", "traefik"
	m := &metrics{
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "renders_total",
			Help: "Renders by result: changed, unchanged, error (the last good configuration is kept)."}, []string{"result"}),
		renderSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "render_duration_seconds",
			Help: "Time to re-list the store and render the configuration.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "config_current",
			Help: "1 when the last refresh succeeded, 0 while the last good configuration is served after a failure."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_success_timestamp_seconds",
			Help: "When the configuration was last refreshed successfully."}),
		configBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "config_bytes",
			Help: "Size of the configuration served."}),
		routers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "routers",
			Help: "Routers in the configuration served, by protocol."}, []string{"protocol"}),
		servers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "servers",
			Help: "Healthy servers in the configuration served."}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "route_problems",
			Help: "Routes left out of the configuration served (conflicts, invalid input, missing secrets)."}),
		watchRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "store_watch_restarts_total",
			Help: "Times the store watch failed and was re-opened."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "store_errors_total",
			Help: "Failed reads of Services and Secrets; routes from the last good read stay, with live endpoints."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "provider_requests_total",
			Help: "Requests to the Traefik provider endpoint by status code."}, []string{"code"}),
		renderPanics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "render_panics_total",
			Help: "Renders that panicked (recovered and logged with their stack; the last good configuration stays)."}),
		warmUpExpired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "warmup_expired_total",
			Help: "Starts where observed state did not sync within the warm-up cap, so the provider served what it knew."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.renders, m.renderSeconds, m.healthy, m.lastSuccess, m.configBytes, m.routers, m.servers, m.problems, m.watchRestarts, m.storeErrors, m.requests, m.renderPanics, m.warmUpExpired} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
