package mongo

import (
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Config is a replica set configuration document as replSetGetConfig returns it (MongoDB manual,
// "Self-Managed Replica Set Configuration"); fields the fake does not simulate (settings, tags,
// horizons, secondaryDelaySecs) are carried through untouched in Extra.
type Config struct {
	ID              string         `bson:"_id"`
	Version         int64          `bson:"version"`
	Term            int64          `bson:"term"`
	ProtocolVersion int64          `bson:"protocolVersion"`
	Members         []ConfigMember `bson:"members"`
	Settings        bson.Raw       `bson:"settings,omitempty"`
}

// ConfigMember is one members[n] entry. Votes and Priority default to 1 when absent, as in
// mongod (members[n].votes, members[n].priority).
type ConfigMember struct {
	ID          int64   `bson:"_id"`
	Host        string  `bson:"host"`
	ArbiterOnly bool    `bson:"arbiterOnly"`
	BuildIndex  bool    `bson:"buildIndexes"`
	Hidden      bool    `bson:"hidden"`
	Priority    float64 `bson:"priority"`
	Votes       int64   `bson:"votes"`
}

// rawConfig is how a config arrives: pointers tell absent fields from zero ones.
type rawConfig struct {
	ID       *string     `bson:"_id"`
	Version  *int64      `bson:"version"`
	Term     *int64      `bson:"term"`
	Protocol *int64      `bson:"protocolVersion"`
	Members  []rawMember `bson:"members"`
	Settings bson.Raw    `bson:"settings,omitempty"`
}

type rawMember struct {
	ID          *int64   `bson:"_id"`
	Host        string   `bson:"host"`
	ArbiterOnly bool     `bson:"arbiterOnly"`
	BuildIndex  *bool    `bson:"buildIndexes"`
	Hidden      bool     `bson:"hidden"`
	Priority    *float64 `bson:"priority"`
	Votes       *int64   `bson:"votes"`
	NewlyAdded  *bool    `bson:"newlyAdded"`
}

// parseConfig decodes and validates a config as mongod's ReplSetConfig parser does (code 93
// InvalidReplicaSetConfig for every structural problem; messages follow mongod's
// repl_set_config.cpp / member_config.cpp wording).
func parseConfig(doc bson.Raw) (*Config, *cmdError) {
	var rc rawConfig
	if err := bson.Unmarshal(doc, &rc); err != nil {
		return nil, errInvalidConfig("%v", err)
	}
	c := &Config{Version: 1, ProtocolVersion: 1, Settings: rc.Settings}
	if rc.ID == nil || *rc.ID == "" {
		return nil, errInvalidConfig("replica set configuration must have non-empty _id field")
	}
	c.ID = *rc.ID
	if rc.Version != nil {
		c.Version = *rc.Version
	}
	if c.Version < 1 {
		return nil, errInvalidConfig("version field value of %d is out of range", c.Version)
	}
	if rc.Term != nil {
		c.Term = *rc.Term
	}
	if rc.Protocol != nil && *rc.Protocol != 1 {
		// Protocol version 0 was removed in 4.0.
		return nil, errInvalidConfig("Support for replication protocol version 0 was removed in MongoDB 4.0. Downgrade to MongoDB version 3.6 and upgrade your protocol version to 1 before upgrading your MongoDB version")
	}
	if len(rc.Members) == 0 {
		return nil, errInvalidConfig("Replica set configuration must have at least one member")
	}
	if len(rc.Members) > 50 {
		return nil, errInvalidConfig("Replica set configuration contains %d members, but must have at least 1 and no more than 50", len(rc.Members))
	}
	ids := map[int64]int{}
	hosts := map[string]int{}
	voters, electable := 0, 0
	for i, rm := range rc.Members {
		if rm.ID == nil {
			return nil, errInvalidConfig("replica set configuration member %d is missing the _id field", i)
		}
		if rm.NewlyAdded != nil {
			// mongod sets this itself and refuses it from users (SERVER-46344).
			return nil, errInvalidConfig("Cannot provide newlyAdded field to member config during reconfig.")
		}
		m := ConfigMember{ID: *rm.ID, Host: rm.Host, ArbiterOnly: rm.ArbiterOnly, Hidden: rm.Hidden, Priority: 1, Votes: 1, BuildIndex: true}
		if rm.BuildIndex != nil {
			m.BuildIndex = *rm.BuildIndex
		}
		if rm.ArbiterOnly {
			m.Priority = 0
		}
		if rm.Priority != nil {
			m.Priority = *rm.Priority
		}
		if rm.Votes != nil {
			m.Votes = *rm.Votes
		}
		if m.Host == "" {
			return nil, errInvalidConfig("Missing expected field \"host\" in members.%d", i)
		}
		if m.Votes != 0 && m.Votes != 1 {
			return nil, errInvalidConfig("votes field value is %d but must be 0 or 1", m.Votes)
		}
		if m.Priority < 0 || m.Priority > 1000 {
			return nil, errInvalidConfig("priority field value of %g is out of range", m.Priority)
		}
		if m.Votes == 0 && m.Priority != 0 {
			return nil, errInvalidConfig("priority must be 0 when non-voting (votes:0)")
		}
		if m.ArbiterOnly && m.Priority != 0 {
			return nil, errInvalidConfig("Arbiter must have priority of 0")
		}
		if m.Hidden && m.Priority != 0 {
			return nil, errInvalidConfig("priority must be 0 when hidden=true")
		}
		if j, dup := ids[m.ID]; dup {
			return nil, errInvalidConfig("Found two member configurations with same _id field, members.%d._id == members.%d._id == %d", j, i, m.ID)
		}
		if j, dup := hosts[m.Host]; dup {
			return nil, errInvalidConfig("Found two member configurations with same host field, members.%d.host == members.%d.host == %s", j, i, m.Host)
		}
		ids[m.ID], hosts[m.Host] = i, i
		if m.Votes == 1 {
			voters++
		}
		if m.Priority > 0 && !m.ArbiterOnly {
			electable++
		}
		c.Members = append(c.Members, m)
	}
	if voters < 1 || voters > 7 {
		return nil, errInvalidConfig("Replica set configuration contains %d voting members, but must be at least 1 and no more than 7", voters)
	}
	if electable == 0 {
		return nil, errInvalidConfig("Replica set configuration must contain at least one non-arbiter member with priority > 0")
	}
	return c, nil
}

func (c *Config) clone() *Config {
	if c == nil {
		return nil
	}
	d := *c
	d.Members = append([]ConfigMember(nil), c.Members...)
	return &d
}

func (c *Config) member(host string) (ConfigMember, bool) {
	if c == nil {
		return ConfigMember{}, false
	}
	for _, m := range c.Members {
		if m.Host == host {
			return m, true
		}
	}
	return ConfigMember{}, false
}

// Voters are the hosts with votes 1.
func (c *Config) Voters() []string {
	var v []string
	for _, m := range c.Members {
		if m.Votes == 1 {
			v = append(v, m.Host)
		}
	}
	sort.Strings(v)
	return v
}

func (c *Config) majority() int { return len(c.Voters())/2 + 1 }

// newerThan compares (version, term) as mongod's ConfigVersionAndTerm does: by term first,
// then version, except that a config from a force reconfig (term -1) compares by version only.
func (c *Config) newerThan(o *Config) bool {
	if o == nil {
		return c != nil
	}
	if c == nil {
		return false
	}
	if c.Term == -1 || o.Term == -1 || c.Term == o.Term {
		return c.Version > o.Version
	}
	return c.Term > o.Term
}

func (c *Config) sameVersion(o *Config) bool {
	return c != nil && o != nil && c.Version == o.Version && c.Term == o.Term
}

func (c *Config) versionString() string {
	return fmt.Sprintf("{version: %d, term: %d}", c.Version, c.Term)
}

// votingChanges counts voters added plus voters removed between two configs, keyed by member
// _id, as mongod's single-node-change rule does ("Reconfiguration Can Add or Remove No More than
// One Voting Member at a Time", replSetReconfig manual page).
func votingChanges(old, nw *Config) int {
	was := map[int64]bool{}
	for _, m := range old.Members {
		if m.Votes == 1 {
			was[m.ID] = true
		}
	}
	n := 0
	for _, m := range nw.Members {
		if m.Votes == 1 {
			if !was[m.ID] {
				n++
			}
			delete(was, m.ID)
		}
	}
	return n + len(was)
}

func (c *Config) doc() bson.D {
	var ms bson.A
	for _, m := range c.Members {
		ms = append(ms, bson.D{
			{Key: "_id", Value: int32(m.ID)}, {Key: "host", Value: m.Host},
			{Key: "arbiterOnly", Value: m.ArbiterOnly}, {Key: "buildIndexes", Value: m.BuildIndex},
			{Key: "hidden", Value: m.Hidden}, {Key: "priority", Value: m.Priority},
			{Key: "tags", Value: bson.D{}}, {Key: "secondaryDelaySecs", Value: int64(0)},
			{Key: "votes", Value: int32(m.Votes)},
		})
	}
	d := bson.D{
		{Key: "_id", Value: c.ID}, {Key: "version", Value: int32(c.Version)},
		{Key: "term", Value: c.Term}, {Key: "members", Value: ms},
		{Key: "protocolVersion", Value: int64(1)}, {Key: "writeConcernMajorityJournalDefault", Value: true},
	}
	if c.Settings != nil {
		d = append(d, bson.E{Key: "settings", Value: c.Settings})
	}
	return d
}
