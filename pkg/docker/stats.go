package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Stats is one sample of a container's resource use, computed as `docker stats --no-stream`
// computes it (the Docker CLI's cli/command/container/stats_helpers.go).
type Stats struct {
	ID string
	// Read is when the engine took the sample.
	Read time.Time
	// CPUPercent is the container's CPU use over the engine's two samples about a second apart,
	// where 100 is one CPU fully used (so up to 100 × the node's CPUs).
	CPUPercent float64
	// MemoryBytes is the memory used without the inactive page cache (what docker stats shows).
	MemoryBytes uint64
	// MemoryLimitBytes is the container's limit: its memory resource, else the host's memory.
	MemoryLimitBytes uint64
	// OnlineCPUs is the CPUs the container may use, as the engine reports them.
	OnlineCPUs uint32
	// PIDs is the number of processes and threads in the container.
	PIDs uint64
}

// HostInfo is what the engine reports of its host.
type HostInfo struct {
	CPUs        int
	MemoryBytes int64
}

// Stats returns one sample of container id's resource use. Like `docker stats --no-stream` it
// asks the engine for a sample with the previous one (stream=false without one-shot), so the
// call takes about a second; ask for several containers concurrently.
func (c *Client) Stats(ctx context.Context, id string) (Stats, error) {
	var out Stats
	err := c.call(ctx, "container stats", short(id), c.t.Call, func(ctx context.Context) error {
		res, err := c.api.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: false, IncludePreviousSample: true})
		if err != nil {
			return wrap(err, "stats of container %s", short(id))
		}
		defer res.Body.Close()
		var s container.StatsResponse
		if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
			return fmt.Errorf("stats of container %s: decode: %w", short(id), err)
		}
		out = StatsFromResponse(id, s)
		return nil
	})
	return out, err
}

// Host returns the engine host's CPUs and memory (docker info's NCPU and MemTotal): the host
// the containers run on, even when --docker.host names a remote engine.
func (c *Client) Host(ctx context.Context) (HostInfo, error) {
	var out HostInfo
	err := c.call(ctx, "info", "", c.t.Call, func(ctx context.Context) error {
		res, err := c.api.Info(ctx, client.InfoOptions{})
		if err != nil {
			return wrap(err, "info")
		}
		out = HostInfo{CPUs: res.Info.NCPU, MemoryBytes: res.Info.MemTotal}
		return nil
	})
	return out, err
}

// StatsFromResponse turns the engine's stats document into a Stats.
func StatsFromResponse(id string, s container.StatsResponse) Stats {
	online := s.CPUStats.OnlineCPUs
	if online == 0 {
		online = uint32(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	return Stats{
		ID:               id,
		Read:             s.Read,
		CPUPercent:       CPUPercent(s.PreCPUStats, s.CPUStats),
		MemoryBytes:      MemoryUsage(s.MemoryStats),
		MemoryLimitBytes: s.MemoryStats.Limit,
		OnlineCPUs:       online,
		PIDs:             s.PidsStats.Current,
	}
}

// CPUPercent is the Docker CLI's calculateCPUPercentUnix: the container's CPU time over the
// system's CPU time between two samples, times the online CPUs (100 = one CPU). A counter that
// did not move forward (a first sample, a restarted container) gives 0.
func CPUPercent(pre, cur container.CPUStats) float64 {
	online := float64(cur.OnlineCPUs)
	if online == 0 {
		online = float64(len(cur.CPUUsage.PercpuUsage))
	}
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(pre.CPUUsage.TotalUsage)
	systemDelta := float64(cur.SystemUsage) - float64(pre.SystemUsage)
	if systemDelta <= 0 || cpuDelta <= 0 {
		return 0
	}
	return cpuDelta / systemDelta * online * 100
}

// MemoryUsage is the Docker CLI's calculateMemUsageUnixNoCache: usage minus the inactive page
// cache (total_inactive_file on cgroup v1, inactive_file on v2).
func MemoryUsage(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}
