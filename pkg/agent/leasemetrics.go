package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// The Leases as this agent's replica of the store has them, read at scrape time: no elector
// has to report, and every agent exports the same figures, so a dashboard sees a hand-over
// even when the old holder is gone.
var (
	leaseTransitionsDesc = prometheus.NewDesc("constellation_lease_transitions",
		"spec.leaseTransitions of each Lease in this agent's replica of the store (bumped by every change of holder).", []string{"lease"}, nil)
	leaseHeldDesc = prometheus.NewDesc("constellation_lease_held",
		"1 when the store names this node as the Lease's holder, else 0.", []string{"lease"}, nil)
)

// leaseCollector exports the Leases of st (a local, possibly stale read) for node.
type leaseCollector struct {
	st   store.Store
	node string
	log  *slog.Logger
}

func (leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- leaseTransitionsDesc
	ch <- leaseHeldDesc
}

func (c leaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	objs, _, err := c.st.List(ctx, v1.KindLease, v1.Selector{}, store.Stale())
	if err != nil {
		c.log.Debug("lease metrics: list leases", "err", err)
		return
	}
	for _, o := range objs {
		l, ok := o.(*v1.Lease)
		if !ok {
			continue
		}
		held := 0.0
		if l.Spec.HolderIdentity == c.node {
			held = 1
		}
		ch <- prometheus.MustNewConstMetric(leaseTransitionsDesc, prometheus.GaugeValue, float64(l.Spec.LeaseTransitions), l.Metadata.Name)
		ch <- prometheus.MustNewConstMetric(leaseHeldDesc, prometheus.GaugeValue, held, l.Metadata.Name)
	}
}
