package node

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// waitWaiters waits until n timers and tickers wait on clk: the probe goroutines are parked
// in their select, so that nothing runs until the test steps the clock.
func waitWaiters(t *testing.T, clk *clocktesting.FakeClock, n int) {
	t.Helper()
	waitFor(t, "the probes to wait on the clock", func() bool { return clk.Waiters() == n })
}

// TestProberRunsOnItsClock: the health probes run on Config.Clock, so a test steps them: the
// first probe when 50ms have passed, the next one when the interval has, failures inside
// startPeriod (measured on the clock from the container's start) not counted.
func TestProberRunsOnItsClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clk := clocktesting.NewFakeClock(t0)
	p := newProber(func(string) {}, clk)
	defer p.stopAll()
	up := listener(t)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downPort := portOf(t, down.Addr().String())
	down.Close() // nothing listens: every connect fails
	one := int32(1)
	spec := func(startPeriod time.Duration) *v1.ServiceSpec {
		return &v1.ServiceSpec{Ports: []v1.ServicePort{{ContainerPort: 8080}},
			HealthCheck: &v1.HealthCheck{TCP: &v1.TCPHealthCheck{Port: "8080"}, Interval: &v1.Duration{Duration: 10 * time.Second},
				Retries: &one, StartPeriod: &v1.Duration{Duration: startPeriod}}}
	}
	ctr := func(id, port string) docker.Container {
		return docker.Container{ID: id, Running: true, StartedAt: t0,
			Ports: map[string]docker.HostPort{"8080/tcp": {IP: "127.0.0.1", Port: port}}}
	}
	p.ensure("web", ctr("up", portOf(t, up.Addr().String())), spec(0))
	p.ensure("web", ctr("grace", downPort), spec(time.Minute))
	waitWaiters(t, clk, 4) // per probe: the first run's timer and the interval's ticker
	for _, id := range []string{"up", "grace"} {
		if h, msg := p.status(id); h != v1.HealthStarting || msg != "" {
			t.Fatalf("%s probed before the clock moved: %s %q", id, h, msg)
		}
	}

	clk.Step(50 * time.Millisecond)
	waitFor(t, "the first probe of up to pass", func() bool { h, _ := p.status("up"); return h == v1.HealthHealthy })
	waitFor(t, "the first probe of grace to fail", func() bool { _, msg := p.status("grace"); return msg != "" })
	if h, _ := p.status("grace"); h != v1.HealthStarting {
		t.Fatalf("a failure inside startPeriod counted: grace is %s", h)
	}

	up.Close()
	waitWaiters(t, clk, 2) // the first-run timers fired; the tickers wait
	clk.Step(10*time.Second - 50*time.Millisecond - time.Nanosecond)
	if h, _ := p.status("up"); h != v1.HealthHealthy {
		t.Fatalf("up probed again before its interval: %s", h)
	}
	clk.Step(time.Nanosecond) // t0+10s: the interval's probe, still inside grace's startPeriod
	waitFor(t, "the second probe of up to fail", func() bool { h, _ := p.status("up"); return h == v1.HealthUnhealthy })
	if h, _ := p.status("grace"); h != v1.HealthStarting {
		t.Fatalf("grace is %s inside its startPeriod", h)
	}
	clk.Step(time.Minute) // past grace's startPeriod: its next failure counts
	waitFor(t, "grace to fail after its startPeriod", func() bool { h, _ := p.status("grace"); return h == v1.HealthUnhealthy })
}

// TestEgressChecksRunOnTheClock: the egress monitor's first probe comes 200ms after the start
// on Config.Clock, then one per interval on a fixed cadence.
func TestEgressChecksRunOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	m := newEgressMonitor(func(string) {}, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer m.stopAll()
	// No process to dial from (Pid 0): every probe fails at once, without the network.
	spec := &v1.ServiceSpec{EgressCheck: &v1.EgressCheck{URL: "http://192.0.2.1/", Interval: &v1.Duration{Duration: 10 * time.Second}}}
	m.ensure("warp", 0, docker.Container{ID: "gw", Running: true, StartedAt: clk.Now()}, spec)
	probes := func() float64 { return testutil.ToFloat64(m.results.WithLabelValues("warp", "fail")) }

	waitWaiters(t, clk, 1)
	clk.Step(200*time.Millisecond - time.Nanosecond)
	if n := probes(); n != 0 {
		t.Fatalf("%v probes before 200ms", n)
	}
	clk.Step(time.Nanosecond)
	waitFor(t, "the first egress probe", func() bool { return probes() == 1 })
	waitWaiters(t, clk, 1) // the next probe's timer is set
	clk.Step(10*time.Second - time.Nanosecond)
	if n := probes(); n != 1 {
		t.Fatalf("%v probes before the interval, want 1", n)
	}
	clk.Step(time.Nanosecond)
	waitFor(t, "the second egress probe, one interval later", func() bool { return probes() == 2 })
}
