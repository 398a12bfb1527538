package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	nodectl "github.com/constellation-sh/constellation/controllers/node"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

var dockerErr error

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	top := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command(filepath.Join(top, "hack", "build-test-images.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		dockerErr = fmt.Errorf("build test images: %w", err)
	}
	os.Exit(m.Run())
}

// cluster is the runtime of one or more nodes in one process, all on the local engine (each
// node's containers carry its own constellation.node label).
type cluster struct {
	t      *testing.T
	ctx    context.Context
	prefix string
	node   string // the first node
	nodes  []string
	st     *store.Memory
	view   *observed.Set
	dc     *docker.Client
	logger *slog.Logger

	// hostAccess is the nodes' --security policy (zero: deny), set before startNode.
	hostAccess hostaccess.Policy

	mu     sync.Mutex
	agents map[string]context.CancelFunc // running node reconcilers
}

func newCluster(t *testing.T) *cluster { return newClusterN(t, 1) }

func newClusterN(t *testing.T, n int) *cluster { return newClusterWith(t, n, hostaccess.Policy{}) }

// newClusterWith is newClusterN with the nodes' host-access policy.
func newClusterWith(t *testing.T, n int, pol hostaccess.Policy) *cluster {
	t.Helper()
	if dockerErr != nil {
		t.Fatal(dockerErr)
	}
	dc, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := dc.Ping(ctx); err != nil {
		t.Fatalf("docker: %v", err)
	}
	prefix := fmt.Sprintf("ct%d-", time.Now().UnixNano()%1_000_000)
	c := &cluster{t: t, ctx: ctx, prefix: prefix, st: store.NewMemory(), view: observed.NewSet(), dc: dc, agents: map[string]context.CancelFunc{}, hostAccess: pol}
	for i := range n {
		c.nodes = append(c.nodes, fmt.Sprintf("%snode%c", prefix, 'a'+i))
	}
	c.node = c.nodes[0]
	t.Cleanup(func() {
		cancel()
		// Remove everything this run created, whatever happened.
		cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer ccancel()
		for _, node := range c.nodes {
			cs, _ := dc.List(cctx, map[string]string{docker.LabelNode: node})
			for _, ct := range cs {
				_ = dc.Remove(cctx, ct.ID)
			}
		}
		for _, n := range []string{prefix + "backend", prefix + "front"} {
			_ = dc.RemoveNetwork(cctx, n)
		}
		_ = dc.RemoveVolume(cctx, prefix+"data")
		dc.Close()
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	c.logger = logger
	for _, node := range c.nodes {
		// The node is registered and alive.
		o, err := c.st.Create(ctx, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: node}})
		if err != nil {
			t.Fatal(err)
		}
		nd := o.(*v1.Node)
		nd.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
		if _, err := c.st.UpdateStatus(ctx, nd); err != nil {
			t.Fatal(err)
		}
		c.startNode(node)
	}
	sched, err := scheduler.New(scheduler.Config{Store: c.st, View: c.view, Logger: logger, Resync: 5 * time.Second, ProgressDeadline: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	go sched.Run(ctx)
	go statusFold(ctx, c.st, c.view)
	return c
}

// startNode starts node's agent (its node reconciler) and marks it alive in the view.
func (c *cluster) startNode(node string) {
	c.t.Helper()
	rec, err := nodectl.New(nodectl.Config{
		// Every simulated node shares the one engine: a per-node prefix keeps a replica moved
		// between nodes from colliding with the name it had on the node it left.
		Node: node, Advertise: "127.0.0.1", PublishIP: "127.0.0.1", NamePrefix: node + "-",
		Store: c.st, Docker: c.dc, Publish: func(rs []observed.Replica) { c.view.SetNodeReplicas(node, rs) },
		// A long resync: healing fast proves the reaction to Docker's event stream.
		Resync: time.Minute, DrainDelay: 300 * time.Millisecond, StopTimeout: 2 * time.Second,
		BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second, Logger: c.logger,
		HostAccess: c.hostAccess,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.mu.Lock()
	c.agents[node] = cancel
	c.mu.Unlock()
	go rec.Run(ctx)
	c.view.SetNode(observed.Node{Name: node, Advertise: "127.0.0.1", Alive: true})
}

// killNode stops node's agent and has gossip declare it dead. Its containers keep running, as
// on a node cut off from the cluster.
func (c *cluster) killNode(node string) {
	c.mu.Lock()
	cancel := c.agents[node]
	delete(c.agents, node)
	c.mu.Unlock()
	cancel()
	c.view.SetNode(observed.Node{Name: node, Advertise: "127.0.0.1", Alive: false})
}

func (c *cluster) alive(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.agents[node]
	return ok
}

// statusFold is a minimal stand-in for controllers/status: it writes readyReplicas and
// replicaStatuses from the observed view, touching no field of the scheduler's.
func statusFold(ctx context.Context, st store.Store, view observed.View) {
	for ctx.Err() == nil {
		changed := view.Changed()
		objs, _, err := st.List(ctx, v1.KindService, v1.Selector{})
		if err == nil {
			reps := view.Replicas()
			for _, o := range objs {
				svc := o.(*v1.Service)
				next := svc.DeepCopyObject().(*v1.Service)
				next.Status.ReadyReplicas, next.Status.ReplicaStatuses = 0, nil
				assigned := map[int32]bool{}
				for _, a := range svc.Status.Assignments {
					assigned[a.Index] = true
				}
				for _, r := range reps {
					if r.Service != svc.Metadata.Name || !assigned[r.Index] {
						continue
					}
					if r.Ready() && r.SpecHash == spechash.Current(svc) {
						next.Status.ReadyReplicas++
					}
					next.Status.ReplicaStatuses = append(next.Status.ReplicaStatuses, v1.ReplicaStatus{Index: r.Index, Node: r.Node,
						ContainerID: r.ContainerID, State: r.State, Health: r.Health, SpecHash: r.SpecHash, Message: r.Message})
				}
				if fmt.Sprint(next.Status.ReplicaStatuses) != fmt.Sprint(svc.Status.ReplicaStatuses) || next.Status.ReadyReplicas != svc.Status.ReadyReplicas {
					_, _ = st.UpdateStatus(ctx, next) // a conflict is retried on the next change
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

func i32(v int32) *int32 { return &v }

func echoSpec(image string, replicas int32) v1.ServiceSpec {
	return v1.ServiceSpec{
		Image: image, Replicas: i32(replicas),
		Ports: []v1.ServicePort{{Name: "http", ContainerPort: 8080}},
		HealthCheck: &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz"},
			Interval: &v1.Duration{Duration: 300 * time.Millisecond}, Retries: i32(2)},
	}
}

func (c *cluster) apply(name string, spec v1.ServiceSpec) {
	c.t.Helper()
	for {
		o, err := c.st.Get(c.ctx, v1.KindService, name)
		if errors.Is(err, store.ErrNotFound) {
			svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name}, Spec: spec}
			svc.Default()
			if errs := svc.Validate(); len(errs) > 0 {
				c.t.Fatal(errs.ToAggregate("services", name))
			}
			if _, err := c.st.Create(c.ctx, svc); err != nil {
				c.t.Fatal(err)
			}
			return
		}
		if err != nil {
			c.t.Fatal(err)
		}
		svc := o.(*v1.Service)
		svc.Spec = spec
		svc.Default()
		if _, err := c.st.Update(c.ctx, svc); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			c.t.Fatal(err)
		}
		return
	}
}

func (c *cluster) get(name string) *v1.Service {
	c.t.Helper()
	o, err := c.st.Get(c.ctx, v1.KindService, name)
	if err != nil {
		c.t.Fatal(err)
	}
	return o.(*v1.Service)
}

// waitFor polls cond until it holds or timeout passes.
func (c *cluster) waitFor(what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	c.t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
	return 0
}

// converged: the rollout is complete, every replica is ready in the view, and Docker runs
// exactly the assigned containers.
func (c *cluster) converged(name string) func() (bool, string) {
	return func() (bool, string) {
		svc := c.get(name)
		cond := v1.FindCondition(svc.Status.Conditions, v1.ServiceProgressing)
		if cond == nil || cond.Reason != v1.ReasonRolloutComplete {
			return false, fmt.Sprintf("progressing %+v", cond)
		}
		if msg := c.dockerMatches(svc); msg != "" {
			return false, msg
		}
		return true, ""
	}
}

// dockerMatches compares Docker with the spec: exactly one running container per assignment,
// with its index, spec hash and image, and nothing else of the service on the node.
func (c *cluster) dockerMatches(svc *v1.Service) string {
	hash := spechash.Current(svc)
	for _, node := range c.nodes {
		if !c.alive(node) {
			continue // a dead node's containers linger until its agent is back
		}
		cs, err := c.dc.List(c.ctx, map[string]string{docker.LabelService: svc.Metadata.Name, docker.LabelNode: node})
		if err != nil {
			return err.Error()
		}
		var want, got []string
		for _, a := range svc.Status.Assignments {
			if a.SpecHash != hash {
				return "assignment with an old hash"
			}
			if a.Node == node {
				want = append(want, fmt.Sprintf("%d/%s/%s", a.Index, a.SpecHash, svc.Spec.Image))
			}
		}
		for _, ct := range cs {
			if !ct.Running {
				return "a container is not running: " + ct.Name + " " + ct.State
			}
			got = append(got, fmt.Sprintf("%s/%s/%s", ct.Labels[docker.LabelReplica], ct.Labels[docker.LabelSpecHash], ct.Image))
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, ",") != strings.Join(got, ",") {
			return fmt.Sprintf("%s runs %v, assignments %v", node, got, want)
		}
	}
	if int32(len(svc.Status.Assignments)) != svc.DesiredReplicas() {
		return fmt.Sprintf("%d assignments for %d replicas", len(svc.Status.Assignments), svc.DesiredReplicas())
	}
	return ""
}

// replicas returns the view's replicas of a service.
func (c *cluster) replicas(name string) []observed.Replica {
	var out []observed.Replica
	for _, r := range c.view.Replicas() {
		if r.Service == name {
			out = append(out, r)
		}
	}
	return out
}

func post(url string) error {
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

var _ = net.JoinHostPort
