// The replica set config as a document: read whole with replSetGetConfig, members replaced
// without losing unmanaged fields, and the commit check. Everything but getConfig is pure.

package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// rawConfig is a config as replSetGetConfig returns it, kept whole so fields the engine does not
// manage (settings, tags) survive a reconfig.
type rawConfig struct {
	doc     bson.D
	version int64
	term    int64
	members []ConfigMember
}

func (s *step) getConfig(ctx context.Context, m replicaset.Member) (*rawConfig, error) {
	var out struct {
		Config bson.Raw `bson:"config"`
	}
	if err := s.e.run(ctx, m, 0, bson.D{{Key: "replSetGetConfig", Value: 1}}, &out); err != nil {
		return nil, err
	}
	var doc bson.D
	if err := bson.Unmarshal(out.Config, &doc); err != nil {
		return nil, fmt.Errorf("replSetGetConfig from %s: %w", m.Name, err)
	}
	var parsed struct {
		Version int64 `bson:"version"`
		Term    int64 `bson:"term"`
		Members []struct {
			ID       int64    `bson:"_id"`
			Host     string   `bson:"host"`
			Votes    *int64   `bson:"votes"`
			Priority *float64 `bson:"priority"`
		} `bson:"members"`
	}
	if err := bson.Unmarshal(out.Config, &parsed); err != nil {
		return nil, fmt.Errorf("replSetGetConfig from %s: %w", m.Name, err)
	}
	rc := &rawConfig{doc: doc, version: parsed.Version, term: parsed.Term}
	for _, pm := range parsed.Members {
		cm := ConfigMember{ID: pm.ID, Host: pm.Host, Votes: 1, Priority: 1}
		if pm.Votes != nil {
			cm.Votes = *pm.Votes
		}
		if pm.Priority != nil {
			cm.Priority = *pm.Priority
		}
		rc.members = append(rc.members, cm)
	}
	return rc, nil
}

// withMembers is the config document with members replaced, the version raised by one and
// term dropped (the primary sets it).
func (rc *rawConfig) withMembers(members []ConfigMember) bson.D {
	var memberDocs []bson.D
	if v, ok := lookup(rc.doc, "members"); ok {
		if arr, ok := v.(bson.A); ok {
			for _, x := range arr {
				if md, ok := x.(bson.D); ok {
					memberDocs = append(memberDocs, md)
				}
			}
		}
	}
	byHost := map[string]bson.D{}
	for _, md := range memberDocs {
		if h, ok := lookup(md, "host"); ok {
			if hs, ok := h.(string); ok {
				byHost[hs] = md
			}
		}
	}
	var out bson.A
	for _, m := range members {
		md, ok := byHost[m.Host]
		if !ok {
			md = bson.D{{Key: "_id", Value: int32(m.ID)}, {Key: "host", Value: m.Host}}
		}
		md = set(set(unset(md, "newlyAdded"), "priority", m.Priority), "votes", int32(m.Votes))
		out = append(out, md)
	}
	d := set(unset(rc.doc, "term"), "members", out)
	return set(d, "version", int32(rc.version+1))
}

func lookup(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

func set(d bson.D, key string, v any) bson.D {
	out := make(bson.D, 0, len(d)+1)
	found := false
	for _, e := range d {
		if e.Key == key {
			e.Value, found = v, true
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, bson.E{Key: key, Value: v})
	}
	return out
}

func unset(d bson.D, key string) bson.D {
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}

// committed: a majority of the config's voters report holding it (replSetGetStatus
// members[].configVersion/configTerm), the engine's own check before the next reconfig; mongod
// checks it again itself (CurrentConfigNotCommittedYet).
func committed(cfg *rawConfig, view *statusReply) (bool, int, int) {
	voters := map[string]bool{}
	for _, m := range cfg.members {
		if m.Votes == 1 {
			voters[m.Host] = true
		}
	}
	have := 0
	for _, m := range view.Members {
		if voters[m.Name] && m.Health == 1 && m.ConfigVersion == cfg.version && m.ConfigTerm == cfg.term {
			have++
		}
	}
	need := len(voters)/2 + 1
	return have >= need, have, need
}

func applyStep(cur []ConfigMember, st Step) []ConfigMember {
	var out []ConfigMember
	for _, m := range cur {
		switch {
		case m.Host == st.Host && st.Kind == StepRemove:
			continue
		case m.Host == st.Host && st.Kind == StepChange:
			m.Votes, m.Priority = st.Votes, st.Priority
		}
		out = append(out, m)
	}
	if st.Kind == StepAdd {
		out = append(out, ConfigMember{ID: st.ID, Host: st.Host, Votes: st.Votes, Priority: st.Priority})
	}
	return out
}

func countVoters(ms []ConfigMember) int {
	n := 0
	for _, m := range ms {
		if m.Votes == 1 {
			n++
		}
	}
	return n
}
