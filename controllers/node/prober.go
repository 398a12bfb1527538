package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"k8s.io/utils/clock"
)

// prober runs the agent's HTTP and TCP health checks, one goroutine per running container.
// A container's health is "starting" until its first success (failures inside startPeriod do
// not count), "healthy" after a success, and "unhealthy" after `retries` failures in a row.
type prober struct {
	onChange func(service string)
	client   *http.Client
	clock    clock.WithTicker

	mu sync.Mutex
	// probes by container ID; guarded by mu.
	probes map[string]*probe
	// prior is the health the previous run of the agent published for containers it left
	// running (Config.Restored), by container ID; a first probe of one starts from it instead of
	// "starting", so an agent restart does not flicker its endpoints. Used once; guarded by mu.
	prior map[string]v1.Health
}

type probe struct {
	key     string // container ID + start time: a restart is a new probe
	service string
	// fallback: a TCP connect to the first declared TCP port of a container without a check
	// of the agent's, run only while the engine does not answer (observe.go).
	fallback bool
	cancel   context.CancelFunc
	health   v1.Health // guarded by prober.mu
	msg      string    // last failure, guarded by prober.mu
}

func newProber(onChange func(string), clk clock.WithTicker) *prober {
	return &prober{
		onChange: onChange, clock: clk,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		probes: map[string]*probe{},
	}
}

// target returns what to probe for hc on container c: "http://host:port/path" or "host:port".
func target(c docker.Container, spec *v1.ServiceSpec, hc *v1.HealthCheck) (string, error) {
	portRef, path := "", ""
	if hc.HTTP != nil {
		portRef, path = string(hc.HTTP.Port), hc.HTTP.Path
	} else if hc.TCP != nil {
		portRef = string(hc.TCP.Port)
	}
	var port *v1.ServicePort
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if portRef == "" || p.Name == portRef || strconv.Itoa(int(p.ContainerPort)) == portRef {
			port = p
			break
		}
	}
	var cport int32
	if port != nil {
		cport = port.ContainerPort
	} else if n, err := strconv.Atoi(portRef); err == nil {
		cport = int32(n)
	} else {
		return "", fmt.Errorf("health check port %q is not a port of the service", portRef)
	}
	addr, err := containerAddr(c, cport)
	if err != nil {
		return "", err
	}
	if hc.HTTP != nil {
		if path == "" {
			path = "/"
		}
		return "http://" + addr + path, nil
	}
	return addr, nil
}

// containerAddr returns where container port cport of c answers: the container's own address
// first (Docker's userland proxy accepts connections on a published port even when nothing
// listens behind it, which would fool a TCP check), else the published port.
func containerAddr(c docker.Container, cport int32) (string, error) {
	if hostNetworked(c) {
		// The node's own network namespace, which the agent shares when it runs on the node.
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(cport))), nil
	}
	addr := ""
	for _, name := range sortedKeys(c.Networks) {
		if ip := c.Networks[name]; ip != "" {
			addr = net.JoinHostPort(ip, strconv.Itoa(int(cport)))
			break
		}
	}
	if hp, ok := c.Ports[observed.PortKey(cport, v1.ProtocolTCP)]; ok && addr == "" {
		ip := hp.IP
		if ip == "" || ip == "0.0.0.0" || ip == "::" {
			ip = "127.0.0.1"
		}
		addr = net.JoinHostPort(ip, hp.Port)
	}
	if addr == "" {
		return "", fmt.Errorf("container port %d is neither published nor reachable", cport)
	}
	return addr, nil
}

// ensure starts probing c (running, with an HTTP or TCP check) unless it already is.
func (p *prober) ensure(service string, c docker.Container, spec *v1.ServiceSpec) {
	tgt, err := target(c, spec, spec.HealthCheck)
	p.ensureProbe(service, c, spec.HealthCheck, tgt, err, false)
}

// ensureFallback starts the outage probe of c: a TCP connect to port every 2s, unhealthy at
// the first failure (the agent cannot see the container, so one failed connect is enough
// doubt), unless c is probed already.
func (p *prober) ensureFallback(service string, c docker.Container, port int32) {
	one := int32(1)
	// Neither HTTP nor TCP set: check() connects over TCP to the target.
	hc := &v1.HealthCheck{Retries: &one}
	tgt, err := containerAddr(c, port)
	p.ensureProbe(service, c, hc, tgt, err, true)
}

// ensureProbe starts probing tgt with hc's timing unless c is probed so already; a target
// error makes the probe unhealthy at once, with the error as its message.
func (p *prober) ensureProbe(service string, c docker.Container, hc *v1.HealthCheck, tgt string, tgtErr error, fallback bool) {
	key := c.ID + "@" + c.StartedAt.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.probes[c.ID]; ok {
		// A running probe of the same container run stays, except that a check of the
		// service replaces an outage probe (never the other way round).
		if old.key == key && (old.fallback == fallback || !old.fallback) {
			return
		}
		old.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr := &probe{key: key, service: service, fallback: fallback, cancel: cancel, health: v1.HealthStarting}
	if h, ok := p.prior[c.ID]; ok && !fallback {
		delete(p.prior, c.ID)
		if h == v1.HealthHealthy || h == v1.HealthUnhealthy {
			pr.health = h
		}
	}
	p.probes[c.ID] = pr
	if tgtErr != nil {
		pr.health, pr.msg = v1.HealthUnhealthy, tgtErr.Error()
		return
	}
	go p.run(ctx, service, pr, tgt, hc, c.StartedAt)
}

// forget stops probing containers not in keep.
func (p *prober) forget(keep map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pr := range p.probes {
		if !keep[id] {
			pr.cancel()
			delete(p.probes, id)
		}
	}
}

// forgetService stops probing containers of service that are not in keep: containers that
// are gone, however they went.
func (p *prober) forgetService(service string, keep map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pr := range p.probes {
		if pr.service == service && !keep[id] {
			pr.cancel()
			delete(p.probes, id)
		}
	}
}

// forgetFallback stops c's outage probe, if it has one (the engine answers again).
func (p *prober) forgetFallback(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.probes[id]; ok && pr.fallback {
		pr.cancel()
		delete(p.probes, id)
	}
}

// forgetIDs stops probing the given containers.
func (p *prober) forgetIDs(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if pr, ok := p.probes[id]; ok {
			pr.cancel()
			delete(p.probes, id)
		}
	}
}

// status returns a probed container's health, or "" when it is not probed.
func (p *prober) status(id string) (v1.Health, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.probes[id]; ok {
		return pr.health, pr.msg
	}
	return "", ""
}

// statusKind is status, and whether the probe is an outage probe.
func (p *prober) statusKind(id string) (v1.Health, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.probes[id]; ok {
		return pr.health, pr.fallback
	}
	return "", false
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *prober) stopAll() { p.forget(nil) }

func (p *prober) run(ctx context.Context, service string, pr *probe, tgt string, hc *v1.HealthCheck, started time.Time) {
	interval, timeout, retries, startPeriod := 2*time.Second, time.Second, 3, time.Duration(0)
	if hc.Interval != nil && hc.Interval.Duration > 0 {
		interval = hc.Interval.Duration
	}
	if hc.Timeout != nil && hc.Timeout.Duration > 0 {
		timeout = hc.Timeout.Duration
	}
	if hc.Retries != nil && *hc.Retries > 0 {
		retries = int(*hc.Retries)
	}
	if hc.StartPeriod != nil {
		startPeriod = hc.StartPeriod.Duration
	}
	// The first probe runs at once, then every interval: a replica is ready as soon as it
	// answers, which is what makes a rolling update quick.
	failures, everOK := 0, false
	first := p.clock.NewTimer(50 * time.Millisecond)
	defer first.Stop()
	tick := p.clock.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-first.C():
		case <-tick.C():
		}
		err := p.check(ctx, tgt, hc, timeout)
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		before := pr.health
		switch {
		case err == nil:
			failures, everOK = 0, true
			pr.health, pr.msg = v1.HealthHealthy, ""
		case !everOK && p.clock.Since(started) < startPeriod:
			pr.msg = err.Error()
		default:
			failures++
			pr.msg = err.Error()
			if failures >= retries {
				pr.health = v1.HealthUnhealthy
			}
		}
		changed := pr.health != before
		p.mu.Unlock()
		if changed {
			p.onChange(service)
		}
	}
}

func (p *prober) check(ctx context.Context, tgt string, hc *v1.HealthCheck, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if hc.HTTP != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tgt, nil)
		if err != nil {
			return err
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", tgt, resp.Status)
		}
		return nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", tgt)
	if err != nil {
		return err
	}
	return conn.Close()
}
