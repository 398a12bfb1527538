package raftstore

import "github.com/prometheus/client_golang/prometheus"

// metrics are the store's Prometheus series. With a nil Registerer they are kept but not
// exported (tests run many stores in one process).
type metrics struct {
	proposals         prometheus.Counter
	appliedEntries    prometheus.Counter
	appliedIndex      prometheus.Gauge
	isLeader          prometheus.Gauge
	leaderChanges     prometheus.Counter
	commitSeconds     prometheus.Histogram
	walSyncSeconds    prometheus.Histogram
	snapshotsTaken    prometheus.Counter
	snapshotsSent     prometheus.Counter
	snapshotsReceived prometheus.Counter
	messagesSent      prometheus.Counter
	messagesDropped   *prometheus.CounterVec
	transportRejected prometheus.Counter
	peerTimeouts      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "constellation", "store"
	m := &metrics{
		proposals:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "proposals_total", Help: "Writes proposed through this member."}),
		appliedEntries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "applied_entries_total", Help: "Raft entries applied."}),
		appliedIndex:   prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "applied_index", Help: "Raft index applied to the object table."}),
		isLeader:       prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "is_leader", Help: "1 when this member leads."}),
		leaderChanges:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "leader_changes_total", Help: "Leader changes seen."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "bolt_commit_seconds", Help: "Duration of the commit of a batch of applied entries into bbolt.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		walSyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "wal_fsync_seconds", Help: "Duration of the fdatasync of the write-ahead log (one per raft Ready with entries or a vote to persist).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		snapshotsTaken:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshots_taken_total", Help: "Snapshots taken (log compactions)."}),
		snapshotsSent:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshots_sent_total", Help: "Snapshots streamed to followers."}),
		snapshotsReceived: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshots_received_total", Help: "Snapshots installed from the leader."}),
		messagesSent:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "peer_messages_sent_total", Help: "Raft messages queued to peers."}),
		messagesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "peer_messages_dropped_total", Help: "Raft messages dropped before sending."},
			[]string{"reason"}),
		transportRejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "peer_connections_rejected_total", Help: "Peer connections refused (token or cluster mismatch)."}),
		peerTimeouts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "peer_stream_timeouts_total",
			Help: "Peer streams closed because the other end was silent for the peer timeout (a half-open connection)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.proposals, m.appliedEntries, m.appliedIndex, m.isLeader, m.leaderChanges, m.commitSeconds, m.walSyncSeconds,
			m.snapshotsTaken, m.snapshotsSent, m.snapshotsReceived, m.messagesSent, m.messagesDropped, m.transportRejected, m.peerTimeouts} {
			reg.MustRegister(c)
		}
	}
	return m
}
