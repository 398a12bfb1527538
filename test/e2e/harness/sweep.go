package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var execCommand = exec.CommandContext

// Sweep removes what earlier runs left behind: containers, networks and volumes labelled
// constellation.e2e whose owning process is gone, and their empty cgroups.
func Sweep(ctx context.Context, logf func(string, ...any)) {
	runs := map[string]bool{}
	for _, kind := range []string{"container", "network", "volume"} {
		var out string
		var err error
		f := "{{.Labels}}"
		switch kind {
		case "container":
			out, err = run(ctx, "", "docker", "ps", "-a", "--filter", "label="+LabelE2E, "--format", f)
		case "network":
			out, err = run(ctx, "", "docker", "network", "ls", "--filter", "label="+LabelE2E, "--format", f)
		case "volume":
			out, err = run(ctx, "", "docker", "volume", "ls", "--filter", "label="+LabelE2E, "--format", f)
		}
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			labels := parseLabels(line)
			id := labels[LabelRun]
			if id == "" || runs[id] {
				continue
			}
			pid, _ := strconv.Atoi(labels[LabelPID])
			if pid > 0 && processAlive(pid) {
				continue // a run in progress (another test process)
			}
			runs[id] = true
		}
	}
	for id := range runs {
		logf("harness: sweeping leftovers of %s", id)
		_ = removeRun(ctx, id)
	}
	sweepCgroups(logf)
	// Data disks of dead runs (their run directory's process is gone: no container left).
	if b, err := os.ReadFile("/proc/mounts"); err == nil {
		liveIDs := liveRunIDs()
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 1 && strings.HasPrefix(f[1], filepath.Join(os.TempDir(), runPrefix)) && strings.Contains(f[1], "/disks/") {
				id := strings.TrimPrefix(f[1], filepath.Join(os.TempDir())+"/")
				id = id[:min(len(id), len(runPrefix)+8)]
				if !liveIDs[id] {
					_, _ = run(ctx, "", "umount", "-l", f[1])
				}
			}
		}
	}
	// Log directories failing runs kept, once a day old.
	kept, _ := filepath.Glob(filepath.Join(os.TempDir(), runPrefix+"*-*"))
	for _, d := range kept {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > 24*time.Hour && !strings.Contains(d, "artifacts") {
			_ = os.RemoveAll(d)
		}
	}
	// Build artifacts of processes that died before their Cleanup.
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "cst-e2e-artifacts-*"))
	for _, d := range dirs {
		f := strings.Split(filepath.Base(d), "-")
		if len(f) >= 5 {
			if pid, err := strconv.Atoi(f[3]); err == nil && !processAlive(pid) {
				_ = os.RemoveAll(d)
			}
		}
	}
}

func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSpace(s), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// removeRun removes the run's containers, then its network and volumes.
func removeRun(ctx context.Context, id string) error {
	var errs []error
	filter := "label=" + LabelRun + "=" + id
	if out, err := run(ctx, "", "docker", "ps", "-aq", "--filter", filter); err == nil && strings.TrimSpace(out) != "" {
		if _, err := run(ctx, "", "docker", append([]string{"rm", "-f", "-v"}, strings.Fields(out)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if out, err := run(ctx, "", "docker", "network", "ls", "-q", "--filter", filter); err == nil && strings.TrimSpace(out) != "" {
		if _, err := run(ctx, "", "docker", append([]string{"network", "rm"}, strings.Fields(out)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if out, err := run(ctx, "", "docker", "volume", "ls", "-q", "--filter", filter); err == nil && strings.TrimSpace(out) != "" {
		if _, err := run(ctx, "", "docker", append([]string{"volume", "rm", "-f"}, strings.Fields(out)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	removeCgroups(id)
	return errors.Join(errs...)
}

// removeCgroups removes the (empty) cgroups the nodes' dockerds made under /<run>-nX.
func removeCgroups(id string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + id + "-*")
	for _, d := range dirs {
		removeEmptyTree(d)
	}
}

func sweepCgroups(logf func(string, ...any)) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + runPrefix + "*")
	live := liveRunIDs()
	for _, d := range dirs {
		base := filepath.Base(d)
		alive := false
		for id := range live {
			if strings.HasPrefix(base, id) {
				alive = true
			}
		}
		if !alive {
			removeEmptyTree(d)
		}
	}
}

// liveRunIDs are runs whose node containers still exist.
func liveRunIDs() map[string]bool {
	out, err := run(context.Background(), "", "docker", "ps", "-a", "--filter", "label="+LabelE2E, "--format", "{{.Labels}}")
	m := map[string]bool{}
	if err != nil {
		return m
	}
	for _, line := range strings.Split(out, "\n") {
		if id := parseLabels(line)[LabelRun]; id != "" {
			m[id] = true
		}
	}
	return m
}

// removeEmptyTree removes a cgroup directory bottom-up (cgroup dirs are removed with rmdir,
// and only when no task is left in them).
func removeEmptyTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeEmptyTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir)
}

// Live clusters are closed on SIGINT/SIGTERM, so an interrupted `go test` leaves nothing behind.
var (
	liveMu     sync.Mutex
	live       = map[*Cluster]bool{}
	signalOnce sync.Once
)

func registerLive(c *Cluster) {
	liveMu.Lock()
	live[c] = true
	liveMu.Unlock()
}

// handleSignals makes SIGINT/SIGTERM remove every open cluster and the build artifacts before
// the process exits (go test's own handling would leave the containers running).
func handleSignals() {
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			s := <-ch
			fmt.Fprintf(os.Stderr, "harness: %v: removing e2e clusters\n", s)
			done := make(chan struct{})
			go func() { Cleanup(); close(done) }()
			select {
			case <-done:
			case <-time.After(90 * time.Second):
			}
			os.Exit(130)
		}()
	})
}

func unregisterLive(c *Cluster) {
	liveMu.Lock()
	delete(live, c)
	liveMu.Unlock()
}

// Cleanup removes the process's build artifacts and closes any cluster still open (call it
// from TestMain after m.Run).
func Cleanup() {
	liveMu.Lock()
	cs := make([]*Cluster, 0, len(live))
	for c := range live {
		cs = append(cs, c)
	}
	liveMu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	if dir, _ := artifactsDir.Load().(string); dir != "" {
		_ = os.RemoveAll(dir)
	}
}
