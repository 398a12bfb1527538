package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	watches  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_api_requests_total",
			Help: "API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "constellation_api_request_duration_seconds",
			Help:    "API request latency by route pattern (watches excluded).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"route"}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "constellation_api_watches",
			Help: "Open watch streams.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.watches)
	}
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) instrument(route string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next(rec, r)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		if r.URL.Query().Get("watch") == "" {
			s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
	})
}

// Unwrap lets http.ResponseController reach the connection (Hijack for the exec stream's
// Upgrade, deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
