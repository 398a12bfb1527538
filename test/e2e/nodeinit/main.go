// Command nodeinit is the supervisor inside an end-to-end node container: it keeps the node's
// dockerd, constellation-agent and (on load-balancer nodes) Traefik running, as systemd would on a
// real machine, and stops them in reverse order on SIGTERM.
//
// It runs under docker-init (tini, PID 1), which reaps orphans, so nodeinit only waits for
// its own children. Each process is restarted one second after it exits, which is what lets the
// harness "restart dockerd" by killing it. Logs go to files in --logDir (a host directory the
// harness keeps after the run).
//
// It is built static (CGO_ENABLED=0) by the harness; the node image has no libc of its own, but
// the host's /usr is mounted read-only so dockerd, containerd, runc and iptables are there.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
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

func main() {
	logDir := flag.String("logDir", "/var/log/e2e", "directory for dockerd.log, agent.log, traefik.log")
	dockerdArgs := flag.String("dockerd", "", "dockerd arguments, space separated")
	agentArgs := flag.String("agent", "", "constellation-agent arguments, space separated (empty: no agent)")
	agentBin := flag.String("agentBin", "/opt/constellation/constellation-agent", "agent binary")
	traefikConfig := flag.String("traefikConfig", "", "Traefik static configuration file (empty: no Traefik)")
	traefikBin := flag.String("traefikBin", "/opt/constellation/traefik", "Traefik binary")
	traefikAfter := flag.String("traefikAfter", "", "start Traefik once this file exists (the agent's CA certificate)")
	flag.Parse()
	if err := os.MkdirAll(*logDir, 0o755); err != nil {
		log.Fatal(err)
	}
	ilog, err := os.OpenFile(filepath.Join(*logDir, "nodeinit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	log.SetOutput(io.MultiWriter(os.Stderr, ilog))
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var procs []*proc
	dockerdBin, err := exec.LookPath("dockerd")
	if err != nil {
		log.Fatalf("nodeinit: %v", err)
	}
	docker := &proc{name: "dockerd", bin: dockerdBin, args: fields(*dockerdArgs), logDir: *logDir}
	procs = append(procs, docker)
	docker.start(ctx)
	waitDocker(ctx, 60*time.Second)
	if *agentArgs != "" {
		a := &proc{name: "agent", bin: *agentBin, args: fields(*agentArgs), logDir: *logDir}
		procs = append(procs, a)
		a.start(ctx)
	}
	if *traefikConfig != "" && *traefikAfter != "" {
		waitFile(ctx, *traefikAfter, 2*time.Minute)
	}
	if *traefikConfig != "" {
		t := &proc{name: "traefik", bin: *traefikBin, args: []string{"--configFile=" + *traefikConfig}, logDir: *logDir}
		procs = append(procs, t)
		t.start(ctx)
	}
	<-ctx.Done()
	log.Printf("nodeinit: stopping")
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(10 * time.Second)
	}
	log.Printf("nodeinit: stopped")
}

func fields(s string) []string { return strings.Fields(s) }

// waitFile waits until path exists (or max passes, or ctx ends; Traefik then starts anyway and
// says what it misses in its log).
func waitFile(ctx context.Context, path string, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Printf("nodeinit: %s not there after %s; starting Traefik anyway", path, max)
}

// pidFile is where nodeinit writes the pid of the running process name ("agent", "traefik").
func pidFile(name string) string { return "/run/nodeinit-" + name + ".pid" }

// waitDocker waits until the engine's socket accepts connections, so the agent does not start
// against an engine that is still loading.
func waitDocker(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c, err := net.DialTimeout("unix", "/var/run/docker.sock", time.Second)
		if err == nil {
			c.Close()
			// The socket is up before the API answers; give it a moment.
			time.Sleep(300 * time.Millisecond)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.Printf("nodeinit: dockerd did not answer within %s; starting the rest anyway", max)
}

// proc is one supervised process, restarted a second after each exit until stop.
type proc struct {
	name   string
	bin    string
	args   []string
	logDir string

	mu sync.Mutex
	// guarded by mu:
	cmd      *exec.Cmd
	stopping bool
	done     chan struct{} // closed when the supervising goroutine ends
}

func (p *proc) start(ctx context.Context) {
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		for n := 0; ; n++ {
			out, err := os.OpenFile(filepath.Join(p.logDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				log.Printf("nodeinit: %s log: %v", p.name, err)
				return
			}
			fmt.Fprintf(out, "---- nodeinit: start %d of %s at %s\n", n, p.name, time.Now().UTC().Format(time.RFC3339Nano))
			cmd := exec.Command(p.bin, p.args...)
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				out.Close()
				return
			}
			err = cmd.Start()
			if err == nil {
				p.cmd = cmd
			}
			p.mu.Unlock()
			if err != nil {
				log.Printf("nodeinit: start %s: %v", p.name, err)
			} else {
				log.Printf("nodeinit: %s started, pid %d", p.name, cmd.Process.Pid)
				// The harness signals a process by this file (Node.RestartAgent).
				if err := os.WriteFile(pidFile(p.name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
					log.Printf("nodeinit: %s pid file: %v", p.name, err)
				}
				err = cmd.Wait()
				log.Printf("nodeinit: %s exited: %v", p.name, err)
			}
			fmt.Fprintf(out, "---- nodeinit: %s exited at %s: %v\n", p.name, time.Now().UTC().Format(time.RFC3339Nano), err)
			out.Close()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// stop sends SIGTERM and waits up to grace, then SIGKILLs the process group.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		<-p.done
	}
}
