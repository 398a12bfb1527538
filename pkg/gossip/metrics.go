package gossip

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg         prometheus.Registerer
	collectors  []prometheus.Collector
	received    *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	sendDropped prometheus.Counter
	broadcasts  prometheus.Counter
	pushPull    *prometheus.CounterVec
	events      *prometheus.CounterVec
	syncs       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, g *Gossip) (*metrics, error) {
	m := &metrics{
		reg: reg,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_gossip_messages_received_total",
			Help: "Gossip messages from peers that were decoded, by kind.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_gossip_messages_dropped_total",
			Help: "Gossip messages and node metadata from peers that were dropped, by reason (malformed, oversized, version, kind, invalid).",
		}, []string{"reason"}),
		sendDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_gossip_send_dropped_total",
			Help: "Local updates or full states that did not fit the size limits and were not sent whole.",
		}),
		broadcasts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_gossip_local_updates_total",
			Help: "Changes of local replicas queued for broadcast.",
		}),
		pushPull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_gossip_push_pull_total",
			Help: "Full state exchanges, by direction.",
		}, []string{"direction"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_gossip_member_events_total",
			Help: "Membership events: join, update, dead, left.",
		}, []string{"event"}),
	}
	m.syncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "constellation_gossip_state_syncs_total",
		Help: "Full state exchanges started because a node came back or its digest showed we missed its updates.",
	})
	m.collectors = []prometheus.Collector{m.syncs, m.received, m.dropped, m.sendDropped, m.broadcasts, m.pushPull, m.events,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "constellation_gossip_members",
			Help: "Alive members, this node included.",
		}, func() float64 { return float64(g.numMembers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "constellation_gossip_broadcast_queue",
			Help: "Replica updates waiting to be gossiped.",
		}, func() float64 {
			if g.queue == nil {
				return 0
			}
			return float64(g.queue.NumQueued())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "constellation_gossip_health_score",
			Help: "Lifeguard's local health score: 0 is healthy.",
		}, func() float64 {
			g.mu.Lock()
			ml := g.ml
			g.mu.Unlock()
			if ml == nil {
				return 0
			}
			return float64(ml.GetHealthScore())
		}),
	}
	if reg != nil {
		for i, c := range m.collectors {
			if err := reg.Register(c); err != nil {
				for _, done := range m.collectors[:i] {
					reg.Unregister(done)
				}
				return nil, fmt.Errorf("gossip: register metrics: %w", err)
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
