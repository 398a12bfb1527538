package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// procStats is what this process (the three Constellation members and the benchmark's
// clients) used so far: to tell a slow run from a fast one (CPU, GC).
type procStats struct {
	wall    time.Time
	cpu     time.Duration // user + system
	numGC   uint32
	gcPause time.Duration
}

func readProcStats() procStats {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return procStats{
		wall:    time.Now(),
		cpu:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		numGC:   ms.NumGC,
		gcPause: time.Duration(ms.PauseTotalNs),
	}
}

// since describes what the process used between o and p.
func (p procStats) since(o procStats) string {
	wall := p.wall.Sub(o.wall)
	return fmt.Sprintf("process CPU %.2fs over %.2fs (%.2f CPUs), %d GCs (%.1f/s, %s paused)",
		(p.cpu - o.cpu).Seconds(), wall.Seconds(), (p.cpu-o.cpu).Seconds()/wall.Seconds(),
		p.numGC-o.numGC, float64(p.numGC-o.numGC)/wall.Seconds(), (p.gcPause - o.gcPause).Round(time.Microsecond))
}

// loadAverage is /proc/loadavg's first three fields: the machine is shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// schedTimes are the kernel's scheduler statistics of some processes, summed over their
// threads (/proc/PID/task/*/schedstat): the time on a CPU, and the time runnable but waiting
// for one. On a shared machine the second says how much the other tenants took.
type schedTimes struct{ run, wait time.Duration }

func readSched(pids ...int) schedTimes {
	var t schedTimes
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var run, wait int64
			if n, _ := fmt.Sscanf(string(b), "%d %d", &run, &wait); n == 2 {
				t.run += time.Duration(run)
				t.wait += time.Duration(wait)
			}
		}
	}
	return t
}

func (t schedTimes) sub(o schedTimes) schedTimes { return schedTimes{t.run - o.run, t.wait - o.wait} }

func (t schedTimes) String() string {
	return fmt.Sprintf("on CPU %.2fs, runnable waiting for a CPU %.2fs", t.run.Seconds(), t.wait.Seconds())
}
