package nodeapi

import "time"

// DiagnosticsPattern is the per-node diagnostics route (read scope): the checks `ctl doctor`
// prints for one node, computed by that node's agent (docs/doctor.md).
const DiagnosticsPattern = "GET /node/{node}/diagnostics"

// DiagnosticsPath is the diagnostics path of node.
func DiagnosticsPath(node string) string { return "/node/" + node + "/diagnostics" }

// CheckStatus is a check's verdict.
type CheckStatus string

// Check verdicts, from best to worst.
const (
	StatusOK   CheckStatus = "OK"
	StatusWarn CheckStatus = "WARN"
	StatusFail CheckStatus = "FAIL"
)

// Check is one line of `ctl doctor`.
type Check struct {
	// Name is what was checked: "docker", "port api", "disk", "certificate node", ...
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	// Message says what was found ("engine answers, API 1.41").
	Message string `json:"message"`
	// Hint says what to do about a WARN or FAIL; empty on OK.
	Hint string `json:"hint,omitempty"`
}

// Diagnostics is GET /node/{node}/diagnostics: the node's own checks, and what the cluster-wide
// checks of `ctl doctor` need from it.
type Diagnostics struct {
	Node    string `json:"node"`
	Version string `json:"version,omitempty"`
	// Time is the node's clock when it answered (clock skew between members).
	Time   time.Time  `json:"time"`
	Checks []Check    `json:"checks"`
	Raft   *RaftInfo  `json:"raft,omitempty"` // nil on the in-memory store
	Gossip GossipInfo `json:"gossip"`
}

// RaftInfo is the node's view of the raft membership.
type RaftInfo struct {
	Role string `json:"role"`
	// Leader is the member this node believes leads, "" when it knows none.
	Leader   string   `json:"leader,omitempty"`
	Voters   []string `json:"voters"`
	Learners []string `json:"learners,omitempty"`
}

// GossipInfo is the node's view of gossip.
type GossipInfo struct {
	// PrimaryKey is the fingerprint of the key the node encrypts gossip with ("" unencrypted).
	PrimaryKey string `json:"primaryKey,omitempty"`
	// Keys is how many keys its keyring holds (the primary included).
	Keys int `json:"keys"`
	// Alive are the members this node's gossip sees alive, itself included, sorted.
	Alive []string `json:"alive"`
}
