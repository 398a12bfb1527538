package dns

import (
	"context"
	"log/slog"

	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
)

// Carrying a plan out against the provider, behind the IsLeader fence.

// apply carries out a plan: deletes first (so a type change does not collide with itself),
// then updates, then creates. It checks the IsLeader fence before every write and stops at the
// first error. It returns the owned records as they are after it.
func (c *Controller) apply(ctx context.Context, zoneID string, p Plan, log *slog.Logger) ([]cloudflare.Record, error) {
	out := append([]cloudflare.Record(nil), p.Keep...)
	for _, r := range p.Delete {
		if !c.leader() {
			return nil, ErrNotLeader
		}
		if err := c.p.DeleteRecord(ctx, zoneID, r.ID); err != nil {
			return nil, err
		}
		c.wrote("delete")
		log.Info("deleted record", "type", r.Type, "name", r.Name, "content", r.Content, "id", r.ID)
	}
	for _, r := range p.Update {
		if !c.leader() {
			return nil, ErrNotLeader
		}
		got, err := c.p.UpdateRecord(ctx, zoneID, r)
		if err != nil {
			return nil, err
		}
		c.wrote("update")
		log.Info("updated record", "type", r.Type, "name", r.Name, "content", r.Content, "id", r.ID)
		out = append(out, got)
	}
	for _, r := range p.Create {
		if !c.leader() {
			return nil, ErrNotLeader
		}
		got, err := c.p.CreateRecord(ctx, zoneID, r)
		if err != nil {
			return nil, err
		}
		c.wrote("create")
		log.Info("created record", "type", r.Type, "name", r.Name, "content", r.Content, "id", got.ID)
		out = append(out, got)
	}
	sortRecords(out)
	return out, nil
}

func (c *Controller) wrote(op string) {
	c.writes.WithLabelValues(op).Inc()
	c.corrected.Inc()
}
