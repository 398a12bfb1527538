package proxy

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled service (Entry.Service), port and protocol.
type metrics struct {
	connections     *prometheus.CounterVec
	active          *prometheus.GaugeVec
	bytes           *prometheus.CounterVec
	connectFailures *prometheus.CounterVec
	unavailable     *prometheus.CounterVec
	endpoints       *prometheus.GaugeVec
	udpDropped      *prometheus.CounterVec
}

var portLabels = []string{"service", "port", "protocol"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_connections_total",
			Help: "Connections accepted (UDP: sessions started) on a mesh listener.",
		}, portLabels),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_mesh_active_connections",
			Help: "Connections (UDP: sessions) open through a mesh listener now.",
		}, portLabels),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_bytes_total",
			Help: "Bytes forwarded; direction in is client to endpoint, out is endpoint to client. TCP counts are added every MiB and when a direction ends.",
		}, append(portLabels, "direction")),
		connectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_connect_failures_total",
			Help: "Connects to an endpoint that failed (refused, timed out; UDP: refused replies); each was retried on the next endpoint.",
		}, portLabels),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_unavailable_total",
			Help: "Connections closed because no endpoint accepted them (none healthy, or every connect failed).",
		}, portLabels),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_mesh_endpoints",
			Help: "Endpoints behind a mesh listener, state healthy or total.",
		}, append(portLabels, "state")),
		udpDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_mesh_udp_dropped_total",
			Help: "UDP datagrams from clients dropped, reason sessions_full or no_endpoint.",
		}, append(portLabels, "reason")),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.active, m.bytes, m.connectFailures, m.unavailable, m.endpoints, m.udpDropped} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("mesh proxy metrics: already registered (one Proxy per Registerer)")
			}
			return nil, err
		}
	}
	return m, nil
}

// portMetrics are one listener's children, resolved once.
type portMetrics struct {
	connections, connectFailures, unavailable prometheus.Counter
	bytesIn, bytesOut                         prometheus.Counter
	dropFull, dropNoEndpoint                  prometheus.Counter
	active                                    prometheus.Gauge
	endpointsHealthy, endpointsTotal          prometheus.Gauge
}

func (m *metrics) forPort(service string, port uint16, proto Protocol) portMetrics {
	l := []string{service, strconv.Itoa(int(port)), string(proto)}
	with := func(extra string) []string { return append(append([]string{}, l...), extra) }
	return portMetrics{
		connections:      m.connections.WithLabelValues(l...),
		connectFailures:  m.connectFailures.WithLabelValues(l...),
		unavailable:      m.unavailable.WithLabelValues(l...),
		bytesIn:          m.bytes.WithLabelValues(with("in")...),
		bytesOut:         m.bytes.WithLabelValues(with("out")...),
		dropFull:         m.udpDropped.WithLabelValues(with("sessions_full")...),
		dropNoEndpoint:   m.udpDropped.WithLabelValues(with("no_endpoint")...),
		active:           m.active.WithLabelValues(l...),
		endpointsHealthy: m.endpoints.WithLabelValues(with("healthy")...),
		endpointsTotal:   m.endpoints.WithLabelValues(with("total")...),
	}
}

// deletePort drops a closed listener's series (connections still draining through it keep
// updating their now unexported children).
func (m *metrics) deletePort(service string, port uint16, proto Protocol) {
	l := prometheus.Labels{"service": service, "port": strconv.Itoa(int(port)), "protocol": string(proto)}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.connections, m.active, m.bytes, m.connectFailures, m.unavailable, m.endpoints, m.udpDropped} {
		v.DeletePartialMatch(l)
	}
}
