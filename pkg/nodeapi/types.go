package nodeapi

import "time"

// Path patterns (for the API server's Handlers; {node} is the node that runs the replica).
const (
	LogsPattern    = "GET /node/{node}/logs"
	ExecPattern    = "POST /node/{node}/exec"
	VolumesPattern = "GET /node/{node}/volumes"
	BackupPattern  = "GET /node/{node}/volumes/{volume}/archive"
	RestorePattern = "PUT /node/{node}/volumes/{volume}/archive"
)

// Paths of one node.
func LogsPath(node string) string    { return "/node/" + node + "/logs" }
func ExecPath(node string) string    { return "/node/" + node + "/exec" }
func VolumesPath(node string) string { return "/node/" + node + "/volumes" }
func ArchivePath(node, volume string) string {
	return "/node/" + node + "/volumes/" + volume + "/archive"
}

// HeaderForwardedBy names the agent that forwarded a request (loop guard: a forwarded request
// is served where it arrives or refused).
const HeaderForwardedBy = "X-Constellation-Forwarded-By"

// TrailerError carries the error that ended a stream after its status was sent (a backup that
// failed half-way).
const TrailerError = "X-Constellation-Error"

// UpgradeProtocol is the Upgrade token of the exec stream.
const UpgradeProtocol = "constellation-exec/1"

// LogEntry is one line of GET /node/{node}/logs; the last line of a stream that failed has
// Error set instead.
type LogEntry struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream,omitempty"` // stdout or stderr
	Line   string    `json:"line"`
	// Container is the container's ID (short) the line came from.
	Container string `json:"container,omitempty"`
	Error     string `json:"error,omitempty"`
}

// VolumeInfo is one named volume on one node (GET /node/{node}/volumes).
type VolumeInfo struct {
	Node    string `json:"node"`
	Volume  string `json:"volume"`
	Service string `json:"service"`
	// Replicas are the indexes of the Service's containers on the node (they mount it).
	Replicas []int32 `json:"replicas,omitempty"`
	// SizeBytes is the volume's size; -1 when the engine cannot tell.
	SizeBytes int64     `json:"sizeBytes"`
	CreatedAt time.Time `json:"createdAt,omitempty"`
	// InUseBy names the running containers that mount it.
	InUseBy []string `json:"inUseBy,omitempty"`
}

// VolumeList is GET /node/{node}/volumes.
type VolumeList struct {
	Items []VolumeInfo `json:"items"`
}

// RestoreResult is the answer of a restore.
type RestoreResult struct {
	Node   string `json:"node"`
	Volume string `json:"volume"`
	Bytes  int64  `json:"bytes"`
}
