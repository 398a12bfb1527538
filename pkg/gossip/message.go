package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Wire format. Every message and every node-metadata blob starts with two bytes, the wire
// version and the message kind, followed by a JSON body with short field names. A receiver
// drops a message whose version it does not speak; within one version, unknown JSON fields are
// ignored so that fields can be added without breaking older agents.
const (
	wireVersion byte = 1

	kindUpdate byte = 1 // one replica of one node changed or went away (broadcast, UDP)
	kindState  byte = 2 // everything the sender knows (push/pull, TCP)
	kindMeta   byte = 3 // node metadata (memberlist node meta, at most 512 bytes)
)

// Limits on decoded content, on top of the byte limits of Config.
const (
	maxNameLen     = 253
	maxShortLen    = 128 // container ID, spec hash, state, health, reason
	maxMessageLen  = 512 // replica message; longer ones are truncated before sending
	maxPorts       = 64
	maxNodes       = 10000
	maxLabels      = 64
	maxAddrLen     = 300
	headerLen      = 2
	truncateMarker = "…"
)

// Errors of the decoder, so that drops are counted by reason.
var (
	errShort      = errors.New("gossip: message too short")
	errVersion    = errors.New("gossip: unknown wire version")
	errKind       = errors.New("gossip: unexpected message kind")
	errOversized  = errors.New("gossip: message too large")
	errMalformed  = errors.New("gossip: malformed message")
	errBadContent = errors.New("gossip: invalid message content")
)

// dropReason names the metric label for a decode error.
func dropReason(err error) string {
	switch {
	case errors.Is(err, errShort), errors.Is(err, errMalformed):
		return "malformed"
	case errors.Is(err, errVersion):
		return "version"
	case errors.Is(err, errKind):
		return "kind"
	case errors.Is(err, errOversized):
		return "oversized"
	case errors.Is(err, errBadContent):
		return "invalid"
	default:
		return "other"
	}
}

// wireReplica is one replica entry. Seq orders the entries of one node epoch; Deleted marks a
// tombstone.
type wireReplica struct {
	Seq         uint64            `json:"q"`
	Deleted     bool              `json:"d,omitempty"`
	Service     string            `json:"s"`
	Index       int32             `json:"i"`
	ContainerID string            `json:"c,omitempty"`
	SpecHash    string            `json:"h,omitempty"`
	State       string            `json:"st,omitempty"`
	Health      string            `json:"he,omitempty"`
	Ports       map[string]string `json:"p,omitempty"`
	ExitCode    int               `json:"x,omitempty"`
	Restarts    int               `json:"rs,omitempty"`
	Reason      string            `json:"re,omitempty"`
	Message     string            `json:"m,omitempty"`
	UpdatedAt   int64             `json:"u,omitempty"` // Unix milliseconds
}

// wireUpdate is a kindUpdate body: one entry of one node.
type wireUpdate struct {
	Node  string      `json:"n"`
	Epoch int64       `json:"e"`
	Entry wireReplica `json:"r"`
}

// wireNodeState is everything known about one node's replicas: live entries and tombstones,
// and the highest sequence number seen (entries at or below it that are absent are gone).
type wireNodeState struct {
	Node    string        `json:"n"`
	Epoch   int64         `json:"e"`
	Seq     uint64        `json:"q"`
	Entries []wireReplica `json:"r,omitempty"`
}

// wireState is a kindState body.
type wireState struct {
	From  string          `json:"f"`
	Nodes []wireNodeState `json:"ns,omitempty"`
	// Images are the nodes' advertised image keys (images.go); older agents ignore them.
	Images []wireImages `json:"im,omitempty"`
}

// nodeMeta is a kindMeta body.
type nodeMeta struct {
	Name      string            `json:"n"`
	Labels    map[string]string `json:"l,omitempty"`
	Advertise string            `json:"a,omitempty"`
	API       string            `json:"api,omitempty"`
	Raft      string            `json:"raft,omitempty"`
	Version   string            `json:"v,omitempty"`
	// Leaving announces a graceful leave, so that the others report "left", not "dead".
	Leaving bool `json:"lv,omitempty"`
	// Restarting, with Leaving, says the agent will be back and its containers keep running:
	// the others report "restarting", and pkg/nodehealth keeps its replicas for a grace period.
	Restarting bool `json:"rs,omitempty"`
	// Digest summarises the node's replica state (anti-entropy).
	Digest digest `json:"d,omitzero"`
}

func encode(kind byte, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("gossip: encode: %w", err)
	}
	out := make([]byte, 0, headerLen+len(b))
	out = append(out, wireVersion, kind)
	return append(out, b...), nil
}

// decode checks the header and size, then unmarshals the body into out.
func decode(buf []byte, kind byte, maxSize int, out any) error {
	if len(buf) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", errOversized, len(buf), maxSize)
	}
	if len(buf) < headerLen {
		return errShort
	}
	if buf[0] != wireVersion {
		return fmt.Errorf("%w %d", errVersion, buf[0])
	}
	if buf[1] != kind {
		return fmt.Errorf("%w %d", errKind, buf[1])
	}
	if err := json.Unmarshal(buf[headerLen:], out); err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	return nil
}

func encodeMeta(m nodeMeta) ([]byte, error) { return encode(kindMeta, m) }

func decodeMeta(buf []byte, maxSize int) (nodeMeta, error) {
	var m nodeMeta
	if err := decode(buf, kindMeta, maxSize, &m); err != nil {
		return nodeMeta{}, err
	}
	if err := checkName("name", m.Name); err != nil {
		return nodeMeta{}, err
	}
	if len(m.Labels) > maxLabels {
		return nodeMeta{}, fmt.Errorf("%w: %d labels", errBadContent, len(m.Labels))
	}
	for _, s := range []string{m.Advertise, m.API, m.Raft, m.Version} {
		if len(s) > maxAddrLen {
			return nodeMeta{}, fmt.Errorf("%w: field too long", errBadContent)
		}
	}
	return m, nil
}

func encodeUpdate(u wireUpdate) ([]byte, error) { return encode(kindUpdate, u) }

func decodeUpdate(buf []byte, maxSize int) (wireUpdate, error) {
	var u wireUpdate
	if err := decode(buf, kindUpdate, maxSize, &u); err != nil {
		return wireUpdate{}, err
	}
	if err := checkName("node", u.Node); err != nil {
		return wireUpdate{}, err
	}
	if err := checkEntry(u.Entry); err != nil {
		return wireUpdate{}, err
	}
	return u, nil
}

func encodeState(s wireState) ([]byte, error) { return encode(kindState, s) }

func decodeState(buf []byte, maxSize int) (wireState, error) {
	var s wireState
	if err := decode(buf, kindState, maxSize, &s); err != nil {
		return wireState{}, err
	}
	if len(s.Nodes) > maxNodes {
		return wireState{}, fmt.Errorf("%w: %d nodes", errBadContent, len(s.Nodes))
	}
	seen := make(map[string]bool, len(s.Nodes))
	for _, n := range s.Nodes {
		if err := checkName("node", n.Node); err != nil {
			return wireState{}, err
		}
		if seen[n.Node] {
			return wireState{}, fmt.Errorf("%w: node %q twice", errBadContent, n.Node)
		}
		seen[n.Node] = true
		for _, e := range n.Entries {
			if err := checkEntry(e); err != nil {
				return wireState{}, err
			}
			if e.Seq > n.Seq {
				return wireState{}, fmt.Errorf("%w: entry seq %d above node seq %d", errBadContent, e.Seq, n.Seq)
			}
		}
	}
	if err := checkImages(s.Images); err != nil {
		return wireState{}, err
	}
	return s, nil
}

func checkName(field, s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("%w: %s must be 1-%d bytes, got %d", errBadContent, field, maxNameLen, len(s))
	}
	return nil
}

func checkEntry(e wireReplica) error {
	if err := checkName("service", e.Service); err != nil {
		return err
	}
	if e.Index < 0 {
		return fmt.Errorf("%w: negative replica index %d", errBadContent, e.Index)
	}
	if e.Seq == 0 {
		return fmt.Errorf("%w: replica seq 0", errBadContent)
	}
	for _, s := range []string{e.ContainerID, e.SpecHash, e.State, e.Health, e.Reason} {
		if len(s) > maxShortLen {
			return fmt.Errorf("%w: field of %d bytes", errBadContent, len(s))
		}
	}
	if len(e.Message) > maxMessageLen+len(truncateMarker) {
		return fmt.Errorf("%w: message of %d bytes", errBadContent, len(e.Message))
	}
	if len(e.Ports) > maxPorts {
		return fmt.Errorf("%w: %d ports", errBadContent, len(e.Ports))
	}
	for k, v := range e.Ports {
		if len(k) > maxShortLen || len(v) > maxAddrLen {
			return fmt.Errorf("%w: port entry too long", errBadContent)
		}
	}
	return nil
}

// toWire converts a local replica, truncating the free-text message to the wire limit.
func toWire(r observed.Replica, seq uint64) wireReplica {
	msg := r.Message
	if len(msg) > maxMessageLen {
		msg = truncateUTF8(msg, maxMessageLen) + truncateMarker
	}
	var updated int64
	if !r.UpdatedAt.IsZero() {
		updated = r.UpdatedAt.UnixMilli()
	}
	return wireReplica{
		Seq:         seq,
		Service:     r.Service,
		Index:       r.Index,
		ContainerID: r.ContainerID,
		SpecHash:    r.SpecHash,
		State:       string(r.State),
		Health:      string(r.Health),
		Ports:       r.Ports,
		ExitCode:    r.ExitCode,
		Restarts:    r.Restarts,
		Reason:      string(r.Reason),
		Message:     msg,
		UpdatedAt:   updated,
	}
}

func fromWire(node string, w wireReplica) observed.Replica {
	r := observed.Replica{
		Service:     w.Service,
		Index:       w.Index,
		Node:        node,
		ContainerID: w.ContainerID,
		SpecHash:    w.SpecHash,
		State:       v1.ReplicaState(w.State),
		Health:      v1.Health(w.Health),
		Ports:       w.Ports,
		ExitCode:    w.ExitCode,
		Restarts:    w.Restarts,
		Reason:      v1.ConditionReason(w.Reason),
		Message:     w.Message,
	}
	if w.UpdatedAt != 0 {
		r.UpdatedAt = time.UnixMilli(w.UpdatedAt).UTC()
	}
	return r
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
