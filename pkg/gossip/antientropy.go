package gossip

import "time"

// Anti-entropy: what repairs the replica state the broadcasts missed. Each node announces a
// digest of its replicas in its memberlist metadata (announce); a node whose copy is behind a
// digest pulls that node's full state a little later if still behind (requestSync, runSyncs);
// dead but not departed nodes are dialled again so that a healed partition merges
// (reconnect); tombstones are collected after TombstoneTTL. The merge itself is replicaState's.

// syncReq asks the loop for a full state exchange with a node, not before due, if it is still
// behind then.
type syncReq struct {
	node, addr string
	due        time.Time
}

// loop garbage-collects tombstones, exchanges full state with nodes that come back, and tries
// to reach dead (not departed) nodes again so that a healed partition merges even after
// memberlist has stopped gossiping to the dead.
func (g *Gossip) loop() {
	defer close(g.done)
	gc := g.cfg.Clock.NewTicker(min(g.cfg.TombstoneTTL/4, 30*time.Second))
	defer gc.Stop()
	announce := g.cfg.Clock.NewTicker(g.cfg.DigestInterval)
	defer announce.Stop()
	tick := g.cfg.Clock.NewTicker(g.cfg.DigestInterval / 4)
	defer tick.Stop()
	var reconnect <-chan time.Time
	if g.cfg.ReconnectInterval > 0 {
		t := g.cfg.Clock.NewTicker(g.cfg.ReconnectInterval)
		defer t.Stop()
		reconnect = t.C()
	}
	pending := map[string]syncReq{}
	for {
		select {
		case <-g.stop:
			return
		case <-gc.C():
			g.collectTombstones()
			g.pruneDeparted()
		case <-announce.C():
			g.announce()
		case r := <-g.syncCh:
			if old, ok := pending[r.node]; ok && old.due.Before(r.due) {
				r.due = old.due
			}
			pending[r.node] = r
		case <-tick.C():
			g.runSyncs(pending)
		case <-reconnect:
			// Dials to a machine that is down can take TCPTimeout each: not in this loop.
			if g.reconnecting.CompareAndSwap(false, true) {
				go func() {
					defer g.reconnecting.Store(false)
					g.reconnect()
				}()
			}
		}
	}
}

// announce puts our current replica digest in our metadata when it changed. Memberlist
// spreads metadata with its own alive messages, at most once per DigestInterval here however
// fast replicas flap.
func (g *Gossip) announce() {
	g.mu.Lock()
	d := g.state.local().digest()
	changed := d != g.announced
	if changed {
		g.announced = d
	}
	g.mu.Unlock()
	if changed {
		// The timeout only bounds the wait for the broadcast to leave; the update stands.
		_ = g.ml.UpdateNode(g.cfg.DigestInterval / 4)
	}
}

// runSyncs starts one due full state exchange (one at a time: each is a TCP round trip).
func (g *Gossip) runSyncs(pending map[string]syncReq) {
	now := g.cfg.Clock.Now()
	for name, r := range pending {
		if r.due.After(now) {
			continue
		}
		if !g.isBehind(name) {
			delete(pending, name) // the broadcasts caught up meanwhile
			continue
		}
		if !g.syncing.CompareAndSwap(false, true) {
			return
		}
		delete(pending, name)
		g.metrics.syncs.Inc()
		go func() {
			defer g.syncing.Store(false)
			select {
			case <-g.stop: // a push/pull after Shutdown would announce us alive again
				return
			default:
			}
			if _, err := g.ml.Join([]string{r.addr}); err != nil {
				g.log.Debug("full state exchange", "node", r.node, "address", r.addr, "err", err)
			}
		}()
		return
	}
}

func (g *Gossip) isBehind(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[name]
	return m != nil && m.node.Alive && g.state.behind(name, m.digest)
}

func (g *Gossip) reconnect() {
	cutoff := g.cfg.Clock.Now().Add(-g.cfg.ReconnectTimeout)
	var addrs []string
	g.mu.Lock()
	for _, m := range g.members {
		if m.node.State == StateDead && m.node.LastChange.After(cutoff) && m.node.Gossip != "" {
			addrs = append(addrs, m.node.Gossip)
		}
	}
	g.mu.Unlock()
	for _, a := range addrs {
		select {
		case <-g.stop:
			return
		default:
		}
		if _, err := g.ml.Join([]string{a}); err == nil {
			g.log.Info("reconnected to a node declared dead", "address", a)
		}
	}
}

func (g *Gossip) collectTombstones() {
	cutoff := g.cfg.Clock.Now().Add(-g.cfg.TombstoneTTL)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.state.collectTombstones(cutoff)
}

func (g *Gossip) requestSync(r syncReq) {
	select {
	case g.syncCh <- r:
	default: // the loop is busy; the digest or the periodic push/pull will catch up
	}
}
