// One member's connection handling: reading OP_MSG requests, dispatching commands, and hello.

package mongo

import (
	"bufio"
	"net"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func (m *Member) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		m.set.mu.Lock()
		if !m.up || m.ln != ln {
			m.set.mu.Unlock()
			_ = c.Close()
			return
		}
		m.conns[c] = struct{}{}
		m.nextConnID++
		id := m.nextConnID
		m.set.mu.Unlock()
		go m.handle(c, id)
	}
}

func (m *Member) handle(c net.Conn, connID int32) {
	defer func() {
		m.set.mu.Lock()
		delete(m.conns, c)
		m.set.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		req, err := ReadMessage(r)
		if err != nil {
			// mongod closes the connection on a message it cannot parse.
			return
		}
		doc := m.dispatch(req, connID)
		if !req.Legacy() && req.Flags&flagMoreToCome != 0 {
			continue // the client wants no reply
		}
		m.set.mu.Lock()
		m.set.reqID++
		id := m.set.reqID
		m.set.mu.Unlock()
		if _, err := c.Write(encodeReply(id, req, doc)); err != nil {
			return
		}
	}
}

// dispatch runs one command and marshals its reply.
func (m *Member) dispatch(req *Message, connID int32) []byte {
	reply, cerr := m.run(req, connID)
	var d bson.D
	if cerr != nil {
		d = bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: cerr.Msg}}
		if cerr.Code != 0 {
			d = append(d, bson.E{Key: "code", Value: cerr.Code}, bson.E{Key: "codeName", Value: cerr.Name})
		}
	} else {
		d = append(reply, bson.E{Key: "ok", Value: 1.0})
	}
	b, err := bson.Marshal(d)
	if err != nil {
		b, _ = bson.Marshal(bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: err.Error()}})
	}
	return b
}

func (m *Member) run(req *Message, connID int32) (bson.D, *cmdError) {
	name, err := req.CommandName()
	if err != nil {
		return nil, errf(2, "BadValue", "%v", err)
	}
	m.set.mu.Lock()
	m.set.opcodes[req.OpCode.String()+" "+name]++
	m.set.mu.Unlock()
	db := "admin"
	if req.Legacy() {
		db, _, _ = strings.Cut(req.Collection, ".")
	} else if v, err := req.Command.LookupErr("$db"); err == nil {
		db, _ = v.StringValueOK()
	}
	if strings.HasPrefix(name, "replSet") && db != "admin" {
		return nil, errf(CodeUnauthorized, "Unauthorized", "%s may only be run against the admin database.", name)
	}
	switch name {
	case "hello", "isMaster", "ismaster":
		return m.hello(req, name != "hello", connID), nil
	case "ping", "endSessions":
		return bson.D{}, nil
	case "buildInfo", "buildinfo":
		// buildInfo's shape (MongoDB manual, "buildInfo"); the version is the wire version's.
		return bson.D{
			{Key: "version", Value: "7.0.0"}, {Key: "gitVersion", Value: "constellation-fake"},
			{Key: "versionArray", Value: bson.A{int32(7), int32(0), int32(0), int32(0)}},
			{Key: "bits", Value: int32(64)}, {Key: "maxBsonObjectSize", Value: int32(16 * 1024 * 1024)},
		}, nil
	case "replSetInitiate":
		return m.replSetInitiate(req)
	case "replSetGetStatus":
		return m.replSetGetStatus()
	case "replSetGetConfig":
		return m.replSetGetConfig()
	case "replSetReconfig":
		return m.replSetReconfig(req)
	case "replSetStepDown":
		return m.replSetStepDown(req)
	default:
		return nil, errf(CodeCommandNotFound, "CommandNotFound", "no such command: '%s'", name)
	}
}

// hello is modelled on the MongoDB manual's "hello" page: isWritablePrimary (ismaster for the
// legacy isMaster), secondary, setName, setVersion, hosts (electable, non-hidden data members),
// passives (priority 0), arbiters, primary, me, electionId on the primary; before a config, a
// member started with --replSet answers isreplicaset: true with "Does not have a valid replica
// set config". No topologyVersion: the fake does not implement the streaming (awaitable) hello,
// so the driver polls as it does with servers before 4.4.
func (m *Member) hello(req *Message, legacy bool, connID int32) bson.D {
	s := m.set
	s.mu.Lock()
	defer s.mu.Unlock()
	primaryKey := "isWritablePrimary"
	if legacy {
		primaryKey = "ismaster"
	}
	isPrimary := m.state == StatePrimary
	d := bson.D{}
	if v, err := req.Command.LookupErr("helloOk"); err == nil && v.Boolean() {
		d = append(d, bson.E{Key: "helloOk", Value: true})
	}
	d = append(d, bson.E{Key: primaryKey, Value: isPrimary})
	if m.cfg != nil && (m.state == StatePrimary || m.state == StateSecondary) {
		var hosts, passives, arbiters bson.A
		for _, cm := range m.cfg.Members {
			switch {
			case cm.ArbiterOnly:
				arbiters = append(arbiters, cm.Host)
			case cm.Hidden:
			case cm.Priority == 0:
				passives = append(passives, cm.Host)
			default:
				hosts = append(hosts, cm.Host)
			}
		}
		d = append(d, bson.E{Key: "secondary", Value: m.state == StateSecondary},
			bson.E{Key: "setName", Value: m.cfg.ID}, bson.E{Key: "setVersion", Value: int32(m.cfg.Version)},
			bson.E{Key: "hosts", Value: hosts})
		if len(passives) > 0 {
			d = append(d, bson.E{Key: "passives", Value: passives})
		}
		if len(arbiters) > 0 {
			d = append(d, bson.E{Key: "arbiters", Value: arbiters})
		}
		for _, p := range s.members {
			if p.state == StatePrimary && p.up && s.reachLocked(m, p) {
				d = append(d, bson.E{Key: "primary", Value: p.Host})
			}
		}
		d = append(d, bson.E{Key: "me", Value: m.Host})
		if isPrimary {
			d = append(d, bson.E{Key: "electionId", Value: m.electionID})
		}
		d = append(d, bson.E{Key: "logicalSessionTimeoutMinutes", Value: int32(30)})
	} else {
		d = append(d, bson.E{Key: "secondary", Value: false},
			bson.E{Key: "info", Value: "Does not have a valid replica set config"},
			bson.E{Key: "isreplicaset", Value: true})
	}
	return append(d,
		bson.E{Key: "maxBsonObjectSize", Value: int32(16 * 1024 * 1024)},
		bson.E{Key: "maxMessageSizeBytes", Value: int32(MaxMessageSize)},
		bson.E{Key: "maxWriteBatchSize", Value: int32(100000)},
		bson.E{Key: "localTime", Value: bson.NewDateTimeFromTime(s.Now())},
		bson.E{Key: "connectionId", Value: connID},
		bson.E{Key: "minWireVersion", Value: int32(0)},
		bson.E{Key: "maxWireVersion", Value: int32(21)},
		bson.E{Key: "readOnly", Value: false})
}

func maxTime(req *Message) time.Time {
	v, err := req.Command.LookupErr("maxTimeMS")
	if err != nil {
		return time.Time{}
	}
	ms, ok := v.AsInt64OK()
	if !ok || ms <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(ms) * time.Millisecond)
}

func (s *Set) record(c Call) { s.log = append(s.log, c) }
