// The replica set commands: replSetInitiate, replSetGetStatus, replSetGetConfig,
// replSetReconfig (with mongod's checks on the new config) and replSetStepDown.

package mongo

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// replSetInitiate is modelled on mongod's CmdReplSetInitiate and processReplSetInitiate
// (repl_set_commands.cpp, replication_coordinator_impl.cpp) and the manual's replSetInitiate
// page: without a config document it builds {_id: <set>, version: 1, members: [me]}; a node that
// has a config answers AlreadyInitialized "already initialized"; the set name must match
// --replSet; this node must be in the config; every other member must answer the quorum check.
func (m *Member) replSetInitiate(req *Message) (bson.D, *cmdError) {
	s := m.set
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Member: m.Host, Command: "replSetInitiate"}
	cerr := func() *cmdError {
		if m.cfg != nil {
			return errf(CodeAlreadyInitialized, "AlreadyInitialized", "already initialized")
		}
		var cfg *Config
		v := req.Command.Lookup("replSetInitiate")
		if doc, ok := v.DocumentOK(); ok {
			var e *cmdError
			if cfg, e = parseConfig(doc); e != nil {
				return e
			}
		} else {
			cfg = &Config{ID: s.name, Version: 1, ProtocolVersion: 1,
				Members: []ConfigMember{{ID: 0, Host: m.Host, Priority: 1, Votes: 1, BuildIndex: true}}}
		}
		call.Version, call.Voters = cfg.Version, cfg.Voters()
		if cfg.ID != s.name {
			return errInvalidConfig("Attempting to initiate a replica set with name %s, but command line reports %s; rejecting", cfg.ID, s.name)
		}
		if !isMemberOf(cfg, m.Host) {
			return errInvalidConfig("No host described in new configuration with %s for replica set %s maps to this node", cfg.versionString(), cfg.ID)
		}
		for _, cm := range cfg.Members {
			p := s.byHostLocked(cm.Host)
			if p == m {
				continue
			}
			if p == nil || !s.reachLocked(m, p) {
				return errf(CodeNodeNotFound, "NodeNotFound", "replSetInitiate quorum check failed because not all proposed set members responded affirmatively: %s failed with Error connecting to %s :: caused by :: Connection refused", cm.Host, cm.Host)
			}
			if p.cfg != nil {
				return errf(CodeNodeNotFound, "NodeNotFound", "replSetInitiate quorum check failed because not all proposed set members responded affirmatively: %s failed with replica set IDs do not match", cm.Host)
			}
		}
		cfg.Term = 0
		m.cfg = cfg
		s.settleLocked()
		return nil
	}()
	if cerr != nil {
		call.Code = cerr.Code
	}
	s.record(call)
	if cerr != nil {
		return nil, cerr
	}
	return bson.D{}, nil
}

func isMemberOf(c *Config, host string) bool { _, ok := c.member(host); return ok }

// replSetGetStatus is modelled on the manual's replSetGetStatus page: set, date, myState, term,
// the voting counts (majorityVoteCount, writeMajorityCount, votingMembersCount and
// writableVotingMembersCount, SERVER-46274; the fake has no arbiters), and per member _id, name, health, state, stateStr, configVersion,
// configTerm and self; unreachable members show health 0, state 8 "(not reachable/healthy)".
// A removed member answers InvalidReplicaSetConfig "Our replica set config is invalid or we are
// not a member of it", as mongod does.
func (m *Member) replSetGetStatus() (bson.D, *cmdError) {
	s := m.set
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.cfg == nil {
		return nil, errNotYetInitialized
	}
	if m.state == StateRemoved {
		return nil, errInvalidConfig("Our replica set config is invalid or we are not a member of it")
	}
	var members bson.A
	for _, cm := range m.cfg.Members {
		p := s.byHostLocked(cm.Host)
		e := bson.D{{Key: "_id", Value: int32(cm.ID)}, {Key: "name", Value: cm.Host}}
		switch {
		case p == m:
			e = append(e, bson.E{Key: "health", Value: 1.0}, bson.E{Key: "state", Value: int32(m.state)},
				bson.E{Key: "stateStr", Value: stateStr[m.state]},
				bson.E{Key: "configVersion", Value: int32(m.cfg.Version)}, bson.E{Key: "configTerm", Value: m.cfg.Term},
				bson.E{Key: "self", Value: true})
		case p != nil && s.reachLocked(m, p):
			st := p.state
			e = append(e, bson.E{Key: "health", Value: 1.0}, bson.E{Key: "state", Value: int32(st)},
				bson.E{Key: "stateStr", Value: stateStr[st]})
			if p.cfg != nil {
				e = append(e, bson.E{Key: "configVersion", Value: int32(p.cfg.Version)}, bson.E{Key: "configTerm", Value: p.cfg.Term})
			}
		default:
			e = append(e, bson.E{Key: "health", Value: 0.0}, bson.E{Key: "state", Value: int32(StateDown)},
				bson.E{Key: "stateStr", Value: stateStr[StateDown]},
				bson.E{Key: "configVersion", Value: int32(-1)}, bson.E{Key: "configTerm", Value: int64(-1)},
				bson.E{Key: "lastHeartbeatMessage", Value: "Error connecting to " + cm.Host + " :: caused by :: Connection refused"})
		}
		members = append(members, e)
	}
	voters := len(m.cfg.Voters())
	return bson.D{
		{Key: "set", Value: m.cfg.ID}, {Key: "date", Value: bson.NewDateTimeFromTime(s.Now())},
		{Key: "myState", Value: int32(m.state)}, {Key: "term", Value: m.term},
		{Key: "heartbeatIntervalMillis", Value: int64(2000)},
		{Key: "majorityVoteCount", Value: int32(voters/2 + 1)},
		{Key: "writeMajorityCount", Value: int32(voters/2 + 1)},
		{Key: "votingMembersCount", Value: int32(voters)},
		{Key: "writableVotingMembersCount", Value: int32(voters)},
		{Key: "members", Value: members},
	}, nil
}

func (m *Member) replSetGetConfig() (bson.D, *cmdError) {
	s := m.set
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.cfg == nil {
		return nil, errNotYetInitialized
	}
	return bson.D{{Key: "config", Value: m.cfg.doc()}}, nil
}

// replSetReconfig follows mongod's CmdReplSetReconfig (repl_set_commands.cpp): a non-force
// reconfig first waits for the current config to be committed (maxTimeMS expiry answers
// CurrentConfigNotCommittedYet; losing primaryship answers NotWritablePrimary), then
// processReplSetReconfig checks the node is not already installing a config
// (ConfigurationInProgress), that it is a writable primary (NotWritablePrimary "replSetReconfig
// should only be run on a writable PRIMARY. Current state SECONDARY;" unless force), validates the
// config (InvalidReplicaSetConfig), the set name, version, member _ids and the one-voting-change
// rule (NewReplicaSetConfigurationIncompatible), and that this node is in it (NodeNotFound); then
// it installs the config in the primary's term and waits for a majority of the new config's
// voters to hold it ("Reconfig finished but failed to propagate to a majority", MaxTimeMSExpired).
// A force reconfig is accepted on any member, installed at once, with a config term of -1 and
// the version raised by a large amount as mongod does ("Reconfigure a Replica Set with
// Unavailable Members").
func (m *Member) replSetReconfig(req *Message) (bson.D, *cmdError) {
	s := m.set
	s.mu.Lock()
	defer s.mu.Unlock()
	force := false
	if v, err := req.Command.LookupErr("force"); err == nil {
		force = v.Boolean()
	}
	call := Call{Member: m.Host, Command: "replSetReconfig", Force: force}
	reply, cerr := m.reconfigLocked(req, force, &call)
	if cerr != nil {
		call.Code = cerr.Code
	}
	s.record(call)
	return reply, cerr
}

func (m *Member) reconfigLocked(req *Message, force bool, call *Call) (bson.D, *cmdError) {
	s := m.set
	if m.cfg == nil {
		return nil, errNotYetInitialized
	}
	doc, ok := req.Command.Lookup("replSetReconfig").DocumentOK()
	if !ok {
		return nil, &cmdError{Msg: "no configuration specified"}
	}
	deadline := maxTime(req)
	notPrimary := func() *cmdError {
		return errf(CodeNotWritablePrimary, "NotWritablePrimary", "New config is rejected :: caused by :: replSetReconfig should only be run on a writable PRIMARY. Current state %s;", stateStr[m.state])
	}
	if !force {
		if m.state != StatePrimary {
			return nil, notPrimary()
		}
		cur := m.cfg
		if m.cfg.Term != -1 && !s.waitLocked(deadline, func() bool { return m.state != StatePrimary || s.committedLocked(cur) }) {
			return nil, errf(CodeCurrentConfigNotCommittedYet, "CurrentConfigNotCommittedYet", "New config is rejected :: caused by :: operation exceeded time limit")
		}
		if m.state != StatePrimary {
			return nil, notPrimary()
		}
	}
	if m.installing {
		return nil, errf(CodeConfigurationInProgress, "ConfigurationInProgress", "Cannot run replSetReconfig because the node is currently updating its configuration")
	}
	nc, cerr := parseConfig(doc)
	if cerr != nil {
		return nil, cerr
	}
	call.Version, call.Voters = nc.Version, nc.Voters()
	old := m.cfg
	if nc.ID != old.ID {
		return nil, errIncompatible("New and old configurations differ in replica set name; old was %s, and new is %s", old.ID, nc.ID)
	}
	if !force && nc.Version <= old.Version {
		return nil, errIncompatible("New replica set configuration version must be greater than old, but %d is not greater than %d for replica set %s", nc.Version, old.Version, old.ID)
	}
	for _, om := range old.Members {
		for _, nm := range nc.Members {
			if om.Host == nm.Host && om.ID != nm.ID {
				return nil, errIncompatible("New and old configurations both have members with host of %s but in the new configuration the _id field is %d and in the old configuration it is %d for replica set %s", nm.Host, nm.ID, om.ID, old.ID)
			}
			if om.ID == nm.ID && om.ArbiterOnly != nm.ArbiterOnly {
				return nil, errIncompatible("New and old configurations differ in the setting of the arbiterOnly field for member %s; to make this change, remove then re-add the member", nm.Host)
			}
		}
	}
	if !isMemberOf(nc, m.Host) {
		return nil, errf(CodeNodeNotFound, "NodeNotFound", "No host described in new configuration with %s for replica set %s maps to this node", nc.versionString(), nc.ID)
	}
	if !force && votingChanges(old, nc) > 1 {
		return nil, errIncompatible("Non force replica set reconfig can only add or remove at most 1 voting member.")
	}
	if force {
		nc.Version = max(nc.Version, old.Version) + 100000
		nc.Term = -1
	} else {
		nc.Term = s.term
	}
	m.cfg = nc
	s.settleLocked()
	if force {
		return bson.D{}, nil
	}
	if !s.waitLocked(deadline, func() bool { return s.committedLocked(nc) }) {
		return nil, errf(CodeMaxTimeMSExpired, "MaxTimeMSExpired", "Reconfig finished but failed to propagate to a majority :: caused by :: operation exceeded time limit")
	}
	return bson.D{}, nil
}

// replSetStepDown follows CmdReplSetStepDown: the period defaults to 60 s, must not be shorter
// than secondaryCatchUpPeriodSecs (default 10); a non-primary answers NotWritablePrimary "not
// primary so can't step down"; without an electable secondary it fails with ExceededTimeLimit
// (the fake does not wait the catch-up period: it has no replication lag).
func (m *Member) replSetStepDown(req *Message) (bson.D, *cmdError) {
	s := m.set
	s.mu.Lock()
	defer s.mu.Unlock()
	secs, _ := req.Command.Lookup("replSetStepDown").AsInt64OK()
	if secs == 0 {
		secs = 60
	}
	if secs < 0 {
		return nil, errf(2, "BadValue", "stepdown period must be a positive integer")
	}
	catchUp := int64(10)
	if v, err := req.Command.LookupErr("secondaryCatchUpPeriodSecs"); err == nil {
		catchUp, _ = v.AsInt64OK()
	}
	if secs < catchUp {
		return nil, errf(2, "BadValue", "stepdown period must be longer than secondaryCatchUpPeriodSecs")
	}
	s.record(Call{Member: m.Host, Command: "replSetStepDown"})
	if m.state != StatePrimary {
		return nil, errf(CodeNotWritablePrimary, "NotWritablePrimary", "not primary so can't step down")
	}
	electable := false
	for _, p := range s.members {
		if p != m && p.state == StateSecondary && s.reachLocked(m, p) && s.canLeadLocked(p) && !s.Now().Before(p.frozenUntil) {
			electable = true
		}
	}
	if !electable {
		return nil, errf(CodeExceededTimeLimit, "ExceededTimeLimit", "No electable secondaries caught up as of %s. Please use the replSetStepDown command with the argument {force: true} to force node to step down.", s.Now().UTC().Format(time.RFC3339))
	}
	m.state = StateSecondary
	m.frozenUntil = s.Now().Add(time.Duration(secs) * time.Second)
	s.settleLocked()
	return bson.D{}, nil
}
