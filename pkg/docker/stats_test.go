package docker

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func cpu(total, system uint64, online uint32, percpu int) container.CPUStats {
	return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: total, PercpuUsage: make([]uint64, percpu)}, SystemUsage: system, OnlineCPUs: online}
}

// TestCPUPercent follows the Docker CLI's calculateCPUPercentUnix: container delta over system
// delta, times the online CPUs (falling back to the per-CPU counters), 0 when either counter did
// not move forward.
func TestCPUPercent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pre, cur container.CPUStats
		want     float64
	}{
		{"one of two CPUs busy", cpu(1e9, 100e9, 2, 0), cpu(2e9, 102e9, 2, 0), 100},
		{"a quarter of one of four CPUs", cpu(0, 0, 4, 0), cpu(1e8, 16e8, 4, 0), 25},
		{"all of four CPUs", cpu(0, 0, 4, 0), cpu(4e9, 4e9, 4, 0), 400},
		{"online CPUs from percpu_usage (cgroup v1, old engines)", cpu(0, 0, 0, 0), cpu(5e8, 4e9, 0, 8), 100},
		{"idle container", cpu(7e9, 100e9, 2, 0), cpu(7e9, 102e9, 2, 0), 0},
		{"first sample: no previous", container.CPUStats{}, cpu(0, 102e9, 2, 0), 0},
		{"counter went back (container restarted)", cpu(9e9, 100e9, 2, 0), cpu(1e9, 102e9, 2, 0), 0},
		{"system counter did not move", cpu(1e9, 100e9, 2, 0), cpu(2e9, 100e9, 2, 0), 0},
	} {
		if got := CPUPercent(tc.pre, tc.cur); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: CPUPercent = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestMemoryUsage follows calculateMemUsageUnixNoCache: the inactive page cache is not counted.
func TestMemoryUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    container.MemoryStats
		want uint64
	}{
		{"cgroup v2", container.MemoryStats{Usage: 100 << 20, Stats: map[string]uint64{"inactive_file": 30 << 20}}, 70 << 20},
		{"cgroup v1", container.MemoryStats{Usage: 100 << 20, Stats: map[string]uint64{"total_inactive_file": 10 << 20, "inactive_file": 30 << 20}}, 90 << 20},
		{"no stats", container.MemoryStats{Usage: 5 << 20}, 5 << 20},
		{"cache larger than usage (v1)", container.MemoryStats{Usage: 5, Stats: map[string]uint64{"total_inactive_file": 9}}, 5},
		{"cache larger than usage (v2)", container.MemoryStats{Usage: 5, Stats: map[string]uint64{"inactive_file": 9}}, 5},
	} {
		if got := MemoryUsage(tc.m); got != tc.want {
			t.Errorf("%s: MemoryUsage = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestStatsFromResponse decodes an engine's stats document (the shape API 1.41 sends).
func TestStatsFromResponse(t *testing.T) {
	doc := `{"read":"2026-12-02T13:00:01Z","preread":"2026-12-02T13:00:00Z",
	 "pids_stats":{"current":7},
	 "cpu_stats":{"cpu_usage":{"total_usage":3000000000},"system_cpu_usage":204000000000,"online_cpus":4},
	 "precpu_stats":{"cpu_usage":{"total_usage":2000000000},"system_cpu_usage":200000000000,"online_cpus":4},
	 "memory_stats":{"usage":73400320,"limit":268435456,"stats":{"inactive_file":4194304}}}`
	var s container.StatsResponse
	if err := json.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	got := StatsFromResponse("abc", s)
	if math.Abs(got.CPUPercent-100) > 1e-9 || got.MemoryBytes != 73400320-4194304 || got.MemoryLimitBytes != 256<<20 || got.PIDs != 7 || got.OnlineCPUs != 4 {
		t.Fatalf("stats %+v", got)
	}
}
