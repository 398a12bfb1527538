package runtime

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// TestLifecycle walks one Service through apply, scale up and down, a killed container, an
// unhealthy one, an image update under load, a rollback and delete; after each step the
// containers on Docker are exactly what the spec says.
func TestLifecycle(t *testing.T) {
	c := newCluster(t)
	const name = "web"

	c.apply(name, echoSpec("constellation-test/echo:1", 2))
	took := c.waitFor("apply 2 replicas", 60*time.Second, c.converged(name))
	t.Logf("apply: 2 replicas ready in %s", took.Round(time.Millisecond))
	if got := c.get(name).Status.ReadyReplicas; got != 2 {
		// The status fold may lag the scheduler by one view change.
		c.waitFor("readyReplicas=2", 5*time.Second, func() (bool, string) { return c.get(name).Status.ReadyReplicas == 2, "" })
	}
	for _, r := range c.replicas(name) {
		if !strings.HasPrefix(r.Ports["8080/tcp"], "127.0.0.1:") || !r.Ready() {
			t.Fatalf("replica %+v", r)
		}
	}

	c.apply(name, echoSpec("constellation-test/echo:1", 4))
	c.waitFor("scale up to 4", 60*time.Second, c.converged(name))
	c.apply(name, echoSpec("constellation-test/echo:1", 1))
	c.waitFor("scale down to 1", 60*time.Second, c.converged(name))

	// Kill the container: it is started again.
	victim := c.replicas(name)[0]
	if out, err := exec.Command("docker", "kill", victim.ContainerID).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	took = c.waitFor("killed container running again", 30*time.Second, func() (bool, string) {
		rs := c.replicas(name)
		if len(rs) != 1 || !rs[0].Ready() || rs[0].Restarts < 1 {
			return false, fmt.Sprintf("%+v", rs)
		}
		return c.dockerMatches(c.get(name)) == "", ""
	})
	t.Logf("killed container running and ready again after %s (backoff base 200ms)", took.Round(time.Millisecond))

	// Make it unhealthy: it is restarted (same container, new start) and healthy again.
	r := c.replicas(name)[0]
	before, err := c.dc.Inspect(c.ctx, r.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if err := post("http://" + r.Ports["8080/tcp"] + "/admin/unhealthy"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("unhealthy container restarted", 30*time.Second, func() (bool, string) {
		now, err := c.dc.Inspect(c.ctx, r.ContainerID)
		if err != nil {
			return false, err.Error()
		}
		rs := c.replicas(name)
		return now.StartedAt.After(before.StartedAt) && len(rs) == 1 && rs[0].Ready(), fmt.Sprintf("%+v", rs)
	})
	c.waitFor("healthy after restart", 30*time.Second, c.converged(name))

	// Update the image under a steady load through a proxy that follows the view.
	c.apply(name, echoSpec("constellation-test/echo:1", 3))
	c.waitFor("scale to 3", 60*time.Second, c.converged(name))
	load := startLoad(c.view, name, 5*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	c.apply(name, echoSpec("constellation-test/echo:2", 3))
	took = c.waitFor("update to echo:2", 90*time.Second, c.converged(name))
	time.Sleep(500 * time.Millisecond)
	sent, failed, versions := load.stop()
	t.Logf("rolling update of 3 replicas took %s; under load: %d requests, %d failed, answers by version %v", took.Round(time.Millisecond), sent, failed, versions)
	if sent < 100 || versions["2"] == 0 {
		t.Errorf("load did not run or never saw the new version: %d sent, %v", sent, versions)
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the rolling update", failed, sent)
	}

	// Roll back.
	if err := scheduler.RolloutUndoTo(c.ctx, c.st, name, 0); err != nil {
		t.Fatal(err)
	}
	if img := c.get(name).Spec.Image; img != "constellation-test/echo:1" {
		t.Fatalf("undo left image %s", img)
	}
	c.waitFor("rollback to echo:1", 90*time.Second, c.converged(name))

	// Delete: every container goes.
	if _, err := c.st.Delete(c.ctx, v1.KindService, name, ""); err != nil {
		t.Fatal(err)
	}
	c.waitFor("containers removed", 30*time.Second, func() (bool, string) {
		cs, err := c.dc.List(c.ctx, map[string]string{docker.LabelService: name, docker.LabelNode: c.node})
		return err == nil && len(cs) == 0 && len(c.replicas(name)) == 0, fmt.Sprintf("%d containers", len(cs))
	})
}

// TestFaults: a crash loop, a missing image, a missing bind source and a failed update each
// show a reason, and none touches another Service.
func TestFaults(t *testing.T) {
	c := newCluster(t)
	c.apply("good", echoSpec("constellation-test/echo:1", 1))
	c.waitFor("good ready", 60*time.Second, c.converged("good"))
	goodID := c.replicas("good")[0].ContainerID

	c.apply("crash", v1.ServiceSpec{Image: "constellation-test/crasher:1", Env: []v1.EnvVar{{Name: "EXIT_CODE", Value: "7"}}})
	c.apply("noimage", v1.ServiceSpec{Image: "127.0.0.1:1/constellation-test/missing:1"})
	c.apply("novolume", v1.ServiceSpec{Image: "constellation-test/echo:1", HostAccess: true, Volumes: []v1.VolumeMount{{Source: "/nonexistent/" + c.prefix, Target: "/data"}}})

	reason := func(svc string, want v1.ConditionReason, check func(observed.Replica) bool) {
		c.waitFor(svc+" reason "+string(want), 60*time.Second, func() (bool, string) {
			rs := c.replicas(svc)
			if len(rs) != 1 || rs[0].Reason != want || (check != nil && !check(rs[0])) {
				return false, fmt.Sprintf("%+v", rs)
			}
			cond := v1.FindCondition(c.get(svc).Status.Conditions, v1.ServiceProgressing)
			return cond != nil && cond.Status == v1.ConditionFalse && cond.Reason == v1.ReasonRolloutFailed, fmt.Sprintf("%+v", cond)
		})
	}
	reason("crash", v1.ReasonCrashLoop, func(r observed.Replica) bool {
		return r.ExitCode == 7 && strings.Contains(r.Message, "giving up with exit code 7") && r.State == v1.ReplicaFailed
	})
	reason("noimage", v1.ReasonImageNotFound, nil)
	reason("novolume", v1.ReasonVolumeNotFound, nil)
	t.Logf("crash: %+v", c.replicas("crash")[0])

	// A failed update keeps the old replica serving and stops.
	c.apply("good", v1.ServiceSpec{Image: "constellation-test/crasher:1", Replicas: i32(1)})
	c.waitFor("failed update", 60*time.Second, func() (bool, string) {
		cond := v1.FindCondition(c.get("good").Status.Conditions, v1.ServiceProgressing)
		return cond != nil && cond.Reason == v1.ReasonRolloutFailed && strings.Contains(cond.Message, "CrashLoop"), fmt.Sprintf("%+v", cond)
	})
	old, err := c.dc.Inspect(c.ctx, goodID)
	if err != nil || !old.Running {
		t.Fatalf("the old replica of good stopped during a failed update: %v %+v", err, old.State)
	}
	if err := scheduler.RolloutUndoTo(c.ctx, c.st, "good", 0); err != nil {
		t.Fatal(err)
	}
	c.waitFor("good back", 60*time.Second, c.converged("good"))
	if rs := c.replicas("good"); len(rs) != 1 || rs[0].ContainerID != goodID {
		t.Errorf("undo replaced the old replica instead of keeping it: %+v", rs)
	}
}

// load sends GETs through a round-robin proxy over the view's ready replicas.
type load struct {
	stopc        chan struct{}
	wg           sync.WaitGroup
	sent, failed atomic.Int64
	mu           sync.Mutex
	versions     map[string]int
}

func startLoad(view observed.View, service string, every time.Duration) *load {
	l := &load{stopc: make(chan struct{}), versions: map[string]int{}}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Second}}
	var rr atomic.Int64
	pick := func() string {
		var eps []string
		for _, r := range view.Replicas() {
			if r.Service == service && r.Ready() && r.Ports["8080/tcp"] != "" {
				eps = append(eps, r.Ports["8080/tcp"])
			}
		}
		if len(eps) == 0 {
			return ""
		}
		return eps[int(rr.Add(1))%len(eps)]
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stopc:
				return
			case <-t.C:
			}
			l.sent.Add(1)
			ep := pick()
			ok, ver := false, ""
			// Like Traefik's retry middleware: one more attempt on another endpoint when a
			// connection cannot be made.
			for attempt := 0; attempt < 2 && !ok && ep != ""; attempt++ {
				resp, err := client.Get("http://" + ep + "/")
				if err != nil {
					ep = pick()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok = true
					if f := strings.Fields(string(b)); len(f) > 1 {
						ver = f[1]
					}
				}
			}
			if !ok {
				l.failed.Add(1)
				continue
			}
			l.mu.Lock()
			l.versions[ver]++
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *load) stop() (int64, int64, map[string]int) {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent.Load(), l.failed.Load(), l.versions
}

// TestExecHealthNetworksVolumes: an exec health check is Docker's HEALTHCHECK and drives
// readiness; networks and named volumes are created on demand and attached.
func TestExecHealthNetworksVolumes(t *testing.T) {
	c := newCluster(t)
	sp := v1.ServiceSpec{
		Image: "constellation-test/echo:1", Replicas: i32(2),
		Ports: []v1.ServicePort{{ContainerPort: 8080}},
		HealthCheck: &v1.HealthCheck{Exec: &v1.ExecHealthCheck{Command: []string{"/app", "-probe", "http://127.0.0.1:8080/healthz"}},
			Interval: &v1.Duration{Duration: 300 * time.Millisecond}, Retries: i32(2)},
		Networks: []string{c.prefix + "backend", c.prefix + "front"},
		Volumes:  []v1.VolumeMount{{Source: c.prefix + "data", Target: "/data"}},
	}
	c.apply("exec", sp)
	c.waitFor("exec-checked replicas ready", 60*time.Second, c.converged("exec"))
	for _, r := range c.replicas("exec") {
		ct, err := c.dc.Inspect(c.ctx, r.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		if ct.Health != "healthy" || r.Health != v1.HealthHealthy {
			t.Errorf("docker health %q, observed %q", ct.Health, r.Health)
		}
		if _, ok := ct.Networks[c.prefix+"backend"]; !ok {
			t.Errorf("not on backend: %v", ct.Networks)
		}
		if _, ok := ct.Networks[c.prefix+"front"]; !ok {
			t.Errorf("not on front: %v", ct.Networks)
		}
	}
	out, err := exec.Command("docker", "volume", "inspect", "-f", "{{.Name}}", c.prefix+"data").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != c.prefix+"data" {
		t.Errorf("volume: %v %s", err, out)
	}
	if _, err := c.st.Delete(c.ctx, v1.KindService, "exec", ""); err != nil {
		t.Fatal(err)
	}
	c.waitFor("containers removed", 30*time.Second, func() (bool, string) {
		cs, err := c.dc.List(c.ctx, map[string]string{docker.LabelService: "exec", docker.LabelNode: c.node})
		return err == nil && len(cs) == 0, fmt.Sprintf("%d containers", len(cs))
	})
}

// perNode counts a service's assignments per node.
func (c *cluster) perNode(name string) map[string]int {
	m := map[string]int{}
	for _, a := range c.get(name).Status.Assignments {
		m[a.Node]++
	}
	return m
}

// TestTwoNodes runs two agents on the one engine: spread, a node lost (its replicas move; its
// containers are left alone while it is cut off), the node back (its stale containers go and the
// replicas spread back), and a drain under load.
func TestTwoNodes(t *testing.T) {
	c := newClusterN(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	const name = "web"
	c.apply(name, echoSpec("constellation-test/echo:1", 4))
	c.waitFor("4 replicas over 2 nodes", 60*time.Second, c.converged(name))
	if got := c.perNode(name); got[a] != 2 || got[b] != 2 {
		t.Fatalf("spread %v", got)
	}

	c.killNode(b)
	took := c.waitFor("replicas moved off the dead node", 60*time.Second, func() (bool, string) {
		if got := c.perNode(name); got[a] != 4 {
			return false, fmt.Sprint(got)
		}
		return c.converged(name)()
	})
	t.Logf("replicas of a dead node ready elsewhere after %s", took.Round(time.Millisecond))
	if cs, err := c.dc.List(c.ctx, map[string]string{docker.LabelNode: b}); err != nil || len(cs) != 2 {
		t.Fatalf("the cut-off node's containers should be left running: %v %d", err, len(cs))
	}

	c.startNode(b)
	c.waitFor("spread back after the node returned", 90*time.Second, func() (bool, string) {
		if got := c.perNode(name); got[a] != 2 || got[b] != 2 {
			return false, fmt.Sprint(got)
		}
		return c.converged(name)()
	})

	// Drain b under load: its replicas move to a, new ones first.
	load := startLoad(c.view, name, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	o, err := c.st.Get(c.ctx, v1.KindNode, b)
	if err != nil {
		t.Fatal(err)
	}
	nb := o.(*v1.Node)
	nb.Spec.Drain = true
	if _, err := c.st.Update(c.ctx, nb); err != nil {
		t.Fatal(err)
	}
	c.waitFor("drained", 90*time.Second, func() (bool, string) {
		if got := c.perNode(name); got[a] != 4 {
			return false, fmt.Sprint(got)
		}
		return c.converged(name)()
	})
	time.Sleep(500 * time.Millisecond)
	sent, failed, _ := load.stop()
	t.Logf("drain under load: %d requests, %d failed", sent, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the drain", failed, sent)
	}

	// b takes replicas again, so that a wrongly lost a would have its replicas moved there.
	o, _ = c.st.Get(c.ctx, v1.KindNode, b)
	nb = o.(*v1.Node)
	nb.Spec.Drain = false
	if _, err := c.st.Update(c.ctx, nb); err != nil {
		t.Fatal(err)
	}
	c.waitFor("spread back after the drain ended", 90*time.Second, func() (bool, string) {
		if got := c.perNode(name); got[a] != 2 || got[b] != 2 {
			return false, fmt.Sprint(got)
		}
		return c.converged(name)()
	})

	// The agent of a restarts as the real one does: it leaves gossip with the restart marker
	// (the node reads "restarting" everywhere), its supervisor starts it again a moment later,
	// and it re-adopts its running containers. Nothing is re-placed meanwhile.
	ids := func() string {
		var out []string
		for _, r := range c.replicas(name) {
			out = append(out, r.ContainerID)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	before := ids()
	c.mu.Lock()
	cancel := c.agents[a]
	c.mu.Unlock()
	cancel()
	c.view.SetNode(observed.Node{Name: a, Advertise: "127.0.0.1", State: observed.StateRestarting, LastChange: time.Now()})
	time.Sleep(1500 * time.Millisecond) // the scheduler reconciles on the view change meanwhile
	c.startNode(a)
	time.Sleep(2 * time.Second)
	c.waitFor("converged after an agent restart", 30*time.Second, c.converged(name))
	if after := ids(); after != before {
		t.Errorf("an agent restart replaced containers: %s -> %s", before, after)
	}
}
