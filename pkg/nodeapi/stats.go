package nodeapi

import "time"

// StatsPattern is GET /node/{node}/stats[?service=S] (read scope): one sample of the resource
// use of the running containers the agent created on the node, with the node's totals.
const StatsPattern = "GET /node/{node}/stats"

// StatsPath is the stats path of one node.
func StatsPath(node string) string { return "/node/" + node + "/stats" }

// ReplicaStats is one replica's container on one node, as `docker stats --no-stream` shows it.
type ReplicaStats struct {
	Service string `json:"service"`
	Index   int32  `json:"index"`
	// Container is the container's ID (short).
	Container string `json:"container"`
	// CPUPercent: 100 is one CPU fully used (Docker's convention, so up to 100 × CPUs).
	CPUPercent float64 `json:"cpuPercent"`
	// MemoryBytes is the memory used without the inactive page cache.
	MemoryBytes uint64 `json:"memoryBytes"`
	// MemoryLimitBytes is the container's memory limit (the host's memory when it has none).
	MemoryLimitBytes uint64 `json:"memoryLimitBytes"`
	PIDs             uint64 `json:"pids"`
	// Error says why the container's sample could not be taken (the other fields are zero).
	Error string `json:"error,omitempty"`
}

// NodeStats is GET /node/{node}/stats.
type NodeStats struct {
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// CPUs and MemoryBytes are the engine host's (docker info); 0 when the engine did not say.
	CPUs        int   `json:"cpus"`
	MemoryBytes int64 `json:"memoryBytes"`
	// ReplicasCPUPercent is the sum of the replicas' CPUPercent (100 = one CPU).
	ReplicasCPUPercent float64 `json:"replicasCPUPercent"`
	// ReplicasMemoryBytes is the sum of the replicas' MemoryBytes.
	ReplicasMemoryBytes uint64         `json:"replicasMemoryBytes"`
	Replicas            []ReplicaStats `json:"replicas"`
}
