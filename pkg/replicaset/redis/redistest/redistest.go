// Package redistest starts real redis-server and redis-sentinel processes (Debian's packages,
// installed by hack/redis.sh) on loopback ports, for the redis engine's integration tests and
// hack/bench-replicaset. It imports only pkg/replicaset of ours.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// Binaries are the paths of redis-server and redis-sentinel.
type Binaries struct{ Server, Sentinel string }

// Find looks the binaries up on PATH; when they are missing it runs hack/redis.sh (found by
// walking up from the working directory) once and looks again. The error says what is missing.
func Find() (Binaries, error) {
	b, err := lookup()
	if err == nil {
		return b, nil
	}
	script := findScript()
	if script == "" {
		return b, fmt.Errorf("%w (and hack/redis.sh was not found to install them)", err)
	}
	out, ierr := exec.Command(script).CombinedOutput()
	if b, err2 := lookup(); err2 == nil {
		return b, nil
	}
	return b, fmt.Errorf("%w; %s could not install them: %v: %s", err, script, ierr, bytes.TrimSpace(out))
}

func lookup() (Binaries, error) {
	var b Binaries
	var missing []string
	var err error
	if b.Server, err = exec.LookPath("redis-server"); err != nil {
		missing = append(missing, "redis-server")
	}
	if b.Sentinel, err = exec.LookPath("redis-sentinel"); err != nil {
		missing = append(missing, "redis-sentinel")
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("redistest: %v not on PATH (Debian packages redis-server and redis-sentinel; hack/redis.sh installs them)", missing)
	}
	return b, nil
}

func findScript() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "hack", "redis.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Proc is one running redis-server or redis-sentinel.
type Proc struct {
	IP   string
	Port int
	Dir  string
	args []string
	bin  string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is "127.0.0.1:port".
func (p *Proc) Addr() string { return net.JoinHostPort(p.IP, strconv.Itoa(p.Port)) }

// StartServer starts redis-server on port (0: a free one), with no persistence and its working
// directory under dir.
func StartServer(b Binaries, dir string, port int, extra ...string) (*Proc, error) {
	return StartServerAt(b, dir, "127.0.0.1", port, extra...)
}

// StartServerAt is StartServer on a given loopback address (127.0.0.0/8 needs no setup on Linux).
func StartServerAt(b Binaries, dir, ip string, port int, extra ...string) (*Proc, error) {
	var err error
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	d := filepath.Join(dir, "redis-"+ip+"-"+strconv.Itoa(port))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", bindOf(ip), "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", d, "--daemonize", "no", "--logfile", ""}, extra...)
	p := &Proc{IP: ip, Port: port, Dir: d, args: args, bin: b.Server, log: filepath.Join(d, "log")}
	return p, p.Start()
}

// StartSentinel starts redis-sentinel on port (0: a free one) with a fresh, writable config
// file under dir.
func StartSentinel(b Binaries, dir string, port int) (*Proc, error) {
	return StartSentinelAt(b, dir, "127.0.0.1", port)
}

// StartSentinelAt is StartSentinel on a given loopback address.
func StartSentinelAt(b Binaries, dir, ip string, port int) (*Proc, error) {
	var err error
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	d := filepath.Join(dir, "sentinel-"+ip+"-"+strconv.Itoa(port))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(d, "sentinel.conf")
	p := &Proc{IP: ip, Port: port, Dir: d, args: []string{conf}, bin: b.Sentinel, log: filepath.Join(d, "log")}
	if err := p.ResetConfig(); err != nil {
		return nil, err
	}
	return p, p.Start()
}

// ResetConfig gives a stopped sentinel a fresh config file (it forgets everything).
func (p *Proc) ResetConfig() error {
	conf := filepath.Join(p.Dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind %s\nprotected-mode no\ndir %s\n", p.Port, bindOf(p.IP), p.Dir)
	return os.WriteFile(conf, []byte(body), 0o644)
}

func bindOf(ip string) string {
	if ip == "127.0.0.1" {
		return "127.0.0.1 -::1" // "localhost" may resolve to either
	}
	return ip
}

// Start (re)starts the process and waits until its port accepts connections.
func (p *Proc) Start() error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s on port %d exited at start; log %s: %s", filepath.Base(p.bin), p.Port, p.log, tail(p.log))
		default:
		}
		if c, err := net.DialTimeout("tcp", p.Addr(), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s on port %d does not listen after 20s", filepath.Base(p.bin), p.Port)
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Log returns the end of the process's log.
func (p *Proc) Log() string { return tail(p.log) }

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Set is a replica set of local processes: servers[i] and sentinels[i] make "node" i.
type Set struct {
	Servers   []*Proc
	Sentinels []*Proc
	// Host is the name members and sentinels announce ("localhost", so that Sentinel's
	// hostname support is exercised as in a cluster, where it is the mesh name).
	Host string
}

// StartSet starts n servers and n sentinels under dir.
func StartSet(b Binaries, dir string, n int) (*Set, error) {
	s := &Set{Host: "localhost"}
	for range n {
		p, err := StartServer(b, dir, 0)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Servers = append(s.Servers, p)
		q, err := StartSentinel(b, dir, 0)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, q)
	}
	return s, nil
}

// Stop kills every process.
func (s *Set) Stop() {
	for _, p := range append(append([]*Proc{}, s.Servers...), s.Sentinels...) {
		p.Kill()
	}
}

// Members returns the data members as the controller would build them; up reports whether
// node i's server runs (Ready).
func (s *Set) Members(svc string, up func(i int) bool) []replicaset.Member {
	out := make([]replicaset.Member, len(s.Servers))
	for i, p := range s.Servers {
		out[i] = replicaset.Member{Name: fmt.Sprintf("%s-%d", svc, i), Index: i, Host: s.Host, Port: p.Port,
			Dial: p.Addr(), Ready: up == nil || up(i), Node: fmt.Sprintf("node-%d", i)}
	}
	return out
}

// SentinelMembers returns the sentinels as the controller would build them.
func (s *Set) SentinelMembers(svc string, up func(i int) bool) []replicaset.Member {
	out := make([]replicaset.Member, len(s.Sentinels))
	for i, p := range s.Sentinels {
		out[i] = replicaset.Member{Name: fmt.Sprintf("%s-%d", svc, i), Index: i, Host: s.Host, Port: p.Port,
			Dial: p.Addr(), Ready: up == nil || up(i), Node: fmt.Sprintf("node-%d", i)}
	}
	return out
}
