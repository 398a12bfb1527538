package gossip

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is Gossip seen as memberlist's Delegate: metadata, broadcasts and push/pull.
type delegate Gossip

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) g() *Gossip { return (*Gossip)(d) }

func (d *delegate) NodeMeta(limit int) []byte {
	g := d.g()
	g.mu.Lock()
	meta := g.cfg.meta(g.leaving, g.restarting)
	meta.Digest = g.state.local().digest()
	g.mu.Unlock()
	b, err := encodeMeta(meta)
	if err != nil || len(b) > limit {
		// validate() checked the size with the leave flag set, so this cannot happen.
		g.log.Error("node metadata does not fit", "bytes", len(b), "limit", limit, "err", err)
		return nil
	}
	return b
}

// NotifyMsg receives a broadcast. buf is only valid during the call.
func (d *delegate) NotifyMsg(buf []byte) {
	g := d.g()
	u, err := decodeUpdate(buf, g.cfg.MaxMessageSize)
	if err != nil {
		g.metrics.dropped.WithLabelValues(dropReason(err)).Inc()
		g.log.Debug("dropped gossip message", "err", err, "bytes", len(buf))
		return
	}
	g.metrics.received.WithLabelValues("update").Inc()
	if g.applyUpdate(u) {
		// Epidemic spread: memberlist only retransmits from the origin, so pass news on.
		if b := g.encodeBroadcast(u.Node, u.Epoch, u.Entry); b != nil {
			g.queue.QueueBroadcast(b)
		}
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.g().queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	g := d.g()
	g.metrics.pushPull.WithLabelValues("sent").Inc()
	return g.localState()
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	g := d.g()
	ws, err := decodeState(buf, g.cfg.MaxStateSize)
	if err != nil {
		g.metrics.dropped.WithLabelValues(dropReason(err)).Inc()
		g.log.Warn("dropped gossip state", "err", err, "bytes", len(buf))
		return
	}
	g.metrics.pushPull.WithLabelValues("received").Inc()
	g.mergeState(ws, join)
}

// events is Gossip seen as memberlist's EventDelegate. memberlist calls it with its node lock
// held: it must not call back into memberlist.
type events Gossip

var _ memberlist.EventDelegate = (*events)(nil)

func (e *events) NotifyJoin(m *memberlist.Node) {
	g := (*Gossip)(e)
	g.metrics.events.WithLabelValues("join").Inc()
	g.log.Info("node joined", "node", m.Name, "address", m.Address())
	g.setMember(m, true)
}

func (e *events) NotifyLeave(m *memberlist.Node) {
	g := (*Gossip)(e)
	g.setMember(m, false)
}

func (e *events) NotifyUpdate(m *memberlist.Node) {
	g := (*Gossip)(e)
	g.metrics.events.WithLabelValues("update").Inc()
	g.setMember(m, true)
}

func (g *Gossip) setMember(m *memberlist.Node, alive bool) {
	n, meta, d := g.nodeFromMember(m)
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	old := g.members[m.Name]
	n.Alive = alive
	// A departure is read from the metadata the node announced before it went: the node event
	// of the leave itself may carry it, or only the update before it did.
	leaving := meta.Leaving || (!alive && old != nil && old.leaving)
	restarting := meta.Restarting || (!alive && old != nil && old.restarting)
	switch {
	case alive:
		n.State = StateAlive
	case leaving && restarting:
		n.State = StateRestarting
	case leaving:
		n.State = StateLeft
	default:
		n.State = StateDead
	}
	n.LastChange = now
	if old != nil && old.node.State == n.State {
		n.LastChange = old.node.LastChange
	}
	g.members[m.Name] = &member{node: n, leaving: leaving, restarting: restarting && leaving, digest: d}
	self := m.Name == g.cfg.NodeName
	behind := alive && !self && g.state.behind(m.Name, d)
	g.mu.Unlock()
	if behind {
		// The node's digest (in the alive message that announced it, or its metadata update)
		// says we miss some of its replicas: a node that restarted or changed things while cut
		// off, or a broadcast that did not reach us. Its broadcasts may still be on their way,
		// so look again a little later (with jitter, so that a whole cluster does not pull from
		// one node at once), and pull its state if still behind.
		jitter := time.Duration(rand.Int64N(int64(g.cfg.DigestInterval)))
		g.requestSync(syncReq{node: m.Name, addr: n.Gossip, due: now.Add(g.cfg.DigestInterval + jitter)})
	}
	if !alive {
		g.metrics.events.WithLabelValues(n.State).Inc()
		g.log.Info("node gone", "node", n.Name, "state", n.State)
	}
	g.set.SetNode(n)
}

// logWriter turns memberlist's "[LEVEL] memberlist: ..." log lines into slog records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			level = l
			line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	// memberlist logs every failed probe of a dead peer as an error; that is the detector
	// working, not a fault of ours.
	if level == slog.LevelError && (strings.Contains(line, "Failed fallback TCP ping") || strings.Contains(line, "Failed to send")) {
		level = slog.LevelDebug
	}
	w.log.Log(nil, level, line, "source", "memberlist")
	return len(p), nil
}
