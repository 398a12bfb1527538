package dns

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg            prometheus.Registerer
	collectors     []prometheus.Collector
	queries        *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	forwardSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, tableNames func() float64) (*metrics, error) {
	m := &metrics{
		reg: reg,
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_dns_queries_total",
			Help: "Queries answered by the mesh name server, by result: answer (a mesh address), nodata (a mesh name without a record of that type), nxdomain (an unknown mesh name), forwarded (an upstream answered), servfail (every upstream failed, or too many forwards in flight).",
		}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_dns_dropped_total",
			Help: "Packets not answered normally, by reason: malformed (unparseable), response (a DNS response sent to us: ignored), rejected (not a one-question query: FORMERR or NOTIMP), overload (SERVFAIL because MaxForwards forwards were in flight).",
		}, []string{"reason"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_dns_upstream_errors_total",
			Help: "Failed attempts at one upstream resolver (the next one is tried), by reason: timeout, error, SERVFAIL, REFUSED.",
		}, []string{"reason"}),
		forwardSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "constellation_mesh_dns_forward_duration_seconds",
			Help:    "Time to get a forwarded answer from the upstream resolvers, failed attempts at earlier upstreams included.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
	}
	for _, r := range []string{"answer", "nodata", "nxdomain", "forwarded", "servfail"} {
		m.queries.WithLabelValues(r)
	}
	for _, r := range []string{"malformed", "response", "rejected", "overload"} {
		m.dropped.WithLabelValues(r)
	}
	m.collectors = []prometheus.Collector{m.queries, m.dropped, m.upstreamErrors, m.forwardSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "constellation_mesh_dns_names",
			Help: "Mesh names in the current name table.",
		}, tableNames),
	}
	if reg != nil {
		for i, c := range m.collectors {
			if err := reg.Register(c); err != nil {
				for _, done := range m.collectors[:i] {
					reg.Unregister(done)
				}
				return nil, fmt.Errorf("meshdns: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
