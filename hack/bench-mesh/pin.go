package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
)

// syncer is what the benchmark asks of the proxy: serve this table.
type syncer interface {
	Sync(proxy.Table) error
	Close() error
}

// childProxy is the proxy in a child process of its own (this binary with -role=proxy), pinned
// to one core while the load generator and the servers are pinned to another: the layout the
// issue asks for, so the proxy never waits for a core the generator holds. Tables go to it as
// one JSON line on its stdin; it answers "ok" or the error.
type childProxy struct {
	cmd *exec.Cmd
	in  *json.Encoder
	out *bufio.Scanner
}

func startChildProxy(cpu int) (*childProxy, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-role=proxy", fmt.Sprintf("-proxy-cpu=%d", cpu))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childProxy{cmd: cmd, in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout)}
	if err := c.Sync(nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("proxy process: %w", err)
	}
	return c, nil
}

func (c *childProxy) Sync(t proxy.Table) error {
	if t == nil {
		t = proxy.Table{}
	}
	if err := c.in.Encode(t); err != nil {
		return err
	}
	if !c.out.Scan() {
		return fmt.Errorf("proxy process ended: %v", c.out.Err())
	}
	if line := c.out.Text(); line != "ok" {
		return fmt.Errorf("proxy process: %s", line)
	}
	return nil
}

// cpu is the CPU time the proxy process has used so far: the sum over its threads of
// /proc/PID/task/TID/schedstat's first field (nanoseconds on a CPU).
func (c *childProxy) cpu() time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", c.cmd.Process.Pid)
	tids, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, t := range tids {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		var ns int64
		fmt.Sscan(string(b), &ns)
		total += time.Duration(ns)
	}
	return total
}

func (c *childProxy) Close() error {
	c.cmd.Process.Kill()
	return c.cmd.Wait()
}

// runProxyRole is the child: pin every thread of this process to cpu, then serve tables read
// from stdin until it closes.
func runProxyRole(cpu int) {
	if err := pinProcess(cpu); err != nil {
		fmt.Println("pin:", err)
		os.Exit(1)
	}
	p, err := proxy.New(proxy.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer p.Close()
	dec := json.NewDecoder(os.Stdin)
	for {
		var t proxy.Table
		if err := dec.Decode(&t); err != nil {
			return
		}
		if err := p.Sync(t); err != nil {
			fmt.Println(strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		fmt.Println("ok")
	}
}

// pinProcess sets the CPU affinity of every thread of this process (and of threads it makes
// later, which inherit it) to cpu. Called first thing, while the Go runtime has few threads.
func pinProcess(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tids {
		var tid int
		fmt.Sscan(t.Name(), &tid)
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	runtime.GOMAXPROCS(1)
	return nil
}
