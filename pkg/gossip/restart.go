package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/constellation-sh/constellation/pkg/observed"
)

// savedState is what LeaveForRestart keeps of this node for the next run of its agent.
type savedState struct {
	Node     string             `json:"node"`
	SavedAt  time.Time          `json:"savedAt"`
	Replicas []observed.Replica `json:"replicas"`
}

// LeaveForRestart is Leave for an agent that will be back (an upgrade, a configuration change,
// its supervisor restarting it) and leaves its containers running. The others report this node
// "restarting" instead of "left"; pkg/nodehealth keeps its replicas, endpoints and DNS records
// for the restart grace period. With Config.StateFile set, the replicas it publishes are saved
// first, so that the next run announces them at once. Call Shutdown afterwards.
func (g *Gossip) LeaveForRestart(timeout time.Duration) error {
	g.mu.Lock()
	g.restarting = true
	var live []observed.Replica
	live = g.state.live(g.cfg.NodeName)
	g.mu.Unlock()
	var saveErr error
	if g.cfg.StateFile != "" {
		saveErr = saveState(g.cfg.StateFile, savedState{Node: g.cfg.NodeName, SavedAt: g.cfg.Clock.Now().UTC(), Replicas: live})
	}
	return errors.Join(saveErr, g.Leave(timeout))
}

// loadSavedState reads and removes the state a previous run saved, if it is this node's and
// recent enough. Removing it means a later crash does not announce replicas this long-gone
// run saw. A missing file is not an error.
func loadSavedState(path, node string, now time.Time, maxAge time.Duration) ([]observed.Replica, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: read saved state: %w", err)
	}
	_ = os.Remove(path)
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("gossip: saved state %s: %w", path, err)
	}
	if s.Node != node {
		return nil, fmt.Errorf("gossip: saved state %s belongs to node %q, not %q", path, s.Node, node)
	}
	if age := now.Sub(s.SavedAt); age > maxAge || age < -time.Minute {
		return nil, nil
	}
	return s.Replicas, nil
}

func saveState(path string, s savedState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("gossip: save state: %w", err)
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("gossip: save state: %w", err)
	}
	return nil
}

// Restored returns the replicas this run took over from the state its predecessor saved
// (empty when there was none): the node reconciler starts from them, so that what it publishes
// before it has looked at every Service does not withdraw the others.
func (g *Gossip) Restored() []observed.Replica {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]observed.Replica(nil), g.restored...)
}

// restoreLocked makes rs this node's first published replicas.
func (g *Gossip) restoreLocked(rs []observed.Replica) {
	for _, r := range rs {
		r.Node = g.cfg.NodeName
		w := g.fitLocked(toWire(r, g.state.local().seq+1))
		if g.state.restore(w) {
			g.restored = append(g.restored, r)
		}
	}
}

// Forget drops everything known about a node that was removed from the cluster (ctl node
// remove): its membership and its replicas. If it is in fact still running, its next message
// brings it back.
func (g *Gossip) Forget(name string) {
	if name == g.cfg.NodeName {
		return
	}
	g.mu.Lock()
	delete(g.members, name)
	delete(g.images, name)
	g.state.forget(name)
	g.mu.Unlock()
	g.set.RemoveNode(name)
}

// pruneDeparted forgets nodes that left more than ForgetLeftAfter ago, or were declared dead
// more than ReconnectTimeout ago (no longer retried), so that the state this agent keeps and
// sends in every push/pull does not grow with every node that ever was.
func (g *Gossip) pruneDeparted() {
	now := g.cfg.Clock.Now()
	var gone []string
	g.mu.Lock()
	for name, m := range g.members {
		if name == g.cfg.NodeName || m.node.Alive || m.node.LastChange.IsZero() {
			continue
		}
		keep := g.cfg.ForgetLeftAfter
		if m.node.State == StateDead {
			keep = g.cfg.ReconnectTimeout
		}
		if now.Sub(m.node.LastChange) > keep {
			gone = append(gone, name)
			delete(g.members, name)
			delete(g.images, name)
			g.state.forget(name)
		}
	}
	g.mu.Unlock()
	for _, name := range gone {
		g.log.Info("forgot departed node", "node", name)
		g.set.RemoveNode(name)
	}
}
