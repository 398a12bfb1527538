package agent

import (
	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/prometheus/client_golang/prometheus"
)

// viewCollector exports this agent's observed view (gossip) as gauges, computed at scrape
// time: nodes by failure-detector state, replicas by container state and by health. Every
// known state is exported, at zero when nothing is in it, so dashboards and alerts see a
// series rather than nothing.
type viewCollector struct{ view observed.View }

var (
	viewNodesDesc = prometheus.NewDesc("constellation_observed_nodes",
		"Nodes in this agent's gossip view, by failure-detector state (alive, dead, left, restarting).", []string{"state"}, nil)
	viewReplicasDesc = prometheus.NewDesc("constellation_observed_replicas",
		"Replicas live and restarting nodes report through gossip, by container state.", []string{"state"}, nil)
	viewReplicaHealthDesc = prometheus.NewDesc("constellation_observed_replicas_health",
		"Replicas live and restarting nodes report through gossip, by health.", []string{"health"}, nil)
)

var (
	knownNodeStates    = []string{observed.StateAlive, observed.StateDead, observed.StateLeft, observed.StateRestarting}
	knownReplicaStates = []v1.ReplicaState{v1.ReplicaPending, v1.ReplicaCreated, v1.ReplicaRunning, v1.ReplicaExited, v1.ReplicaFailed, v1.ReplicaTerminating}
	knownHealth        = []v1.Health{v1.HealthHealthy, v1.HealthUnhealthy, v1.HealthStarting, v1.HealthNone}
)

func (viewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- viewNodesDesc
	ch <- viewReplicasDesc
	ch <- viewReplicaHealthDesc
}

func (c viewCollector) Collect(ch chan<- prometheus.Metric) {
	nodes := map[string]float64{}
	for _, s := range knownNodeStates {
		nodes[s] = 0
	}
	for _, n := range c.view.Nodes() {
		nodes[n.State]++
	}
	states := map[string]float64{}
	for _, s := range knownReplicaStates {
		states[string(s)] = 0
	}
	health := map[string]float64{}
	for _, h := range knownHealth {
		health[string(h)] = 0
	}
	for _, r := range c.view.Replicas() {
		states[string(r.State)]++
		h := r.Health
		if h == "" {
			h = v1.HealthNone
		}
		health[string(h)]++
	}
	for s, v := range nodes {
		ch <- prometheus.MustNewConstMetric(viewNodesDesc, prometheus.GaugeValue, v, s)
	}
	for s, v := range states {
		ch <- prometheus.MustNewConstMetric(viewReplicasDesc, prometheus.GaugeValue, v, s)
	}
	for h, v := range health {
		ch <- prometheus.MustNewConstMetric(viewReplicaHealthDesc, prometheus.GaugeValue, v, h)
	}
}
