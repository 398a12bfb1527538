package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// route is one HTTP route of the applied stacks and what it answers.
type route struct{ host, path, expect string }

// stackRoutes are the routes of specs/hello and test/e2e/stack.
var stackRoutes = []route{
	{"hello.localhost", "/", "echo 1"},
	{"web.e2e.test", "/", "echo 1"},
	{"api.e2e.test", "/v1/items", "echo 1"},
	{"blue.e2e.test", "/", "echo 2"},
}

var stackServices = []string{"hello", "e2e-web", "e2e-api", "e2e-blue"}

// applyStack applies specs/hello and test/e2e/stack with ctl from outside the cluster.
func applyStack(t *testing.T, ctx context.Context, c *harness.Cluster, via *harness.Node) {
	t.Helper()
	t0 := time.Now()
	out, err := c.Ctl(ctx, via, "apply", "-f", "specs/hello", "-f", "test/e2e/stack", "--wait", "--timeout", "3m")
	if err != nil {
		t.Fatalf("apply the stack: %v", err)
	}
	t.Logf("ctl apply --wait (%s):\n%s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(out))
}

// checkRoutes asserts that every route answers through every given load balancer, waiting up to
// max for each (Traefik polls its provider).
func checkRoutes(t *testing.T, ctx context.Context, lbs []*harness.Node, max time.Duration) {
	t.Helper()
	for _, lb := range lbs {
		for _, r := range stackRoutes {
			waitFor(t, max, fmt.Sprintf("%s%s through %s's Traefik", r.host, r.path, lb.Name), func() error {
				code, body, err := lb.Get(ctx, r.host, r.path)
				if err != nil {
					return err
				}
				if code != 200 || !strings.HasPrefix(body, r.expect) {
					return fmt.Errorf("status %d body %.60q, want 200 %q", code, body, r.expect)
				}
				return nil
			})
		}
	}
}

// putService creates or replaces a Service through node n.
func putService(ctx context.Context, n *harness.Node, s *v1.Service) error {
	_, err := n.Client().Put(ctx, s, client.PutOptions{})
	return err
}

// echoService is a web Service of the echo image with an HTTP health check and a route.
func echoService(name, image string, replicas int32, host string) *v1.Service {
	return spec.Service(name, image,
		spec.Replicas(replicas),
		spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second),
		spec.HTTPRoute(host, "/", "http"),
	)
}

// replicaNodes returns, per node name, how many replicas of s the status and the scheduler's
// assignments put there.
func replicaNodes(s *v1.Service) map[string]int {
	m := map[string]int{}
	for _, r := range s.Status.ReplicaStatuses {
		m[r.Node]++
	}
	for _, a := range s.Status.Assignments {
		if _, ok := m[a.Node]; !ok {
			m[a.Node] = 0
		}
	}
	return m
}

// onNode reports whether any replica status or assignment of s names node.
func onNode(s *v1.Service, node string) bool {
	for _, r := range s.Status.ReplicaStatuses {
		if r.Node == node {
			return true
		}
	}
	for _, a := range s.Status.Assignments {
		if a.Node == node {
			return true
		}
	}
	return false
}

// lbTargets are load targets through each given load balancer for host.
func lbTargets(lbs []*harness.Node, host, expect string) []harness.Target {
	var ts []harness.Target
	for _, lb := range lbs {
		ts = append(ts, harness.Target{Name: lb.Name, URL: lb.WebURL(), Host: host, Path: "/", Expect: expect})
	}
	return ts
}

// runningReplicas counts the running containers of service on every node it can reach, by node.
func runningReplicas(ctx context.Context, nodes []*harness.Node, service string) (map[string][]string, error) {
	out := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := n.Containers(ctx, service, false)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", n.Name, err)
			}
			if len(cs) > 0 {
				out[n.Name] = cs
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

func countAll(m map[string][]string) int {
	k := 0
	for _, v := range m {
		k += len(v)
	}
	return k
}

// leader returns the node whose Node object says raftRole=leader, read through any node in from.
func leader(ctx context.Context, c *harness.Cluster, from []*harness.Node) (*harness.Node, error) {
	var errs []string
	for _, n := range from {
		lr, err := n.Client().List(ctx, v1.KindNode, "")
		if err != nil {
			errs = append(errs, n.Name+": "+err.Error())
			continue
		}
		var roles []string
		for _, o := range lr.Items {
			nd := o.(*v1.Node)
			roles = append(roles, nd.Metadata.Name+"="+string(nd.Status.RaftRole))
			if nd.Status.RaftRole == v1.RaftLeader {
				if ln := c.Node(nd.Metadata.Name); ln != nil {
					return ln, nil
				}
			}
		}
		sort.Strings(roles)
		errs = append(errs, fmt.Sprintf("%s: no Node with raftRole=leader (%s)", n.Name, strings.Join(roles, ", ")))
	}
	return nil, fmt.Errorf("no raft leader known: %s", strings.Join(errs, "; "))
}

// secret is a small Secret used as a write probe.
func secret(name string, seq int) *v1.Secret {
	return spec.Secret(name, map[string]string{"seq": fmt.Sprint(seq)})
}

// secretNames lists the Secret names with prefix through node n.
func secretNames(ctx context.Context, n *harness.Node, prefix string) (map[string]bool, error) {
	return secretNamesVia(ctx, n.Client(), prefix)
}

// secretNamesVia is secretNames through a given client (one with a longer timeout, for large
// Secrets).
func secretNamesVia(ctx context.Context, cl *client.Client, prefix string) (map[string]bool, error) {
	lr, err := cl.List(ctx, v1.KindSecret, "")
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, o := range lr.Items {
		if name := o.GetMetadata().Name; strings.HasPrefix(name, prefix) {
			m[name] = true
		}
	}
	return m, nil
}

func others(all []*harness.Node, not ...*harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range all {
		skip := false
		for _, x := range not {
			if n == x {
				skip = true
			}
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// watchServers logs every change of the running Traefik's servers on each LB (polled every
// 200ms) until stop is closed, so a failure can be matched with what Traefik routed to.
func watchServers(t *testing.T, ctx context.Context, lbs []*harness.Node, stop <-chan struct{}) *sync.WaitGroup {
	return watchServerChanges(t, ctx, lbs, stop, nil)
}

// watchServerChanges is watchServers that also counts, in changes (nil: not counted), every
// change of an LB's server lists after the first one it saw.
func watchServerChanges(t *testing.T, ctx context.Context, lbs []*harness.Node, stop <-chan struct{}, changes *atomic.Int32) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, lb := range lbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := ""
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				servers, err := lb.TraefikServers(ctx)
				cur := fmt.Sprint(servers)
				if err != nil {
					cur = "error: " + err.Error()
				}
				if cur != last {
					t.Logf("%s %s traefik servers: %s", time.Now().Format("15:04:05.000"), lb.Name, cur)
					if last != "" && changes != nil {
						changes.Add(1)
					}
					last = cur
				}
			}
		}()
	}
	return &wg
}

// logFailures logs the first n failures of a load run.
func logFailures(t *testing.T, st harness.LoadStats, n int) {
	for i, f := range st.Failures {
		if i == n {
			t.Logf("... %d more", len(st.Failures)-n)
			break
		}
		t.Logf("failed %s via %s: %s", f.Time.Format("15:04:05.000"), f.Target, f.Reason)
	}
}

// waitLBServers waits until every given load balancer's running Traefik (its own API, not the
// agent's rendering) load-balances the Service's first HTTP route to want servers, and returns
// them per LB. "Ready" in the API says the replicas are healthy; it says nothing about whether
// each Traefik has polled its provider since, so load started at Ready can hit a Traefik that
// still routes to nothing.
func waitLBServers(t *testing.T, ctx context.Context, lbs []*harness.Node, svc string, want int) map[string][]string {
	t.Helper()
	name := svc + "-http-0@http"
	got := map[string][]string{}
	t0 := time.Now()
	for _, lb := range lbs {
		waitFor(t, time.Minute, fmt.Sprintf("%d servers of %s in %s's Traefik", want, svc, lb.Name), func() error {
			servers, err := lb.TraefikServers(ctx)
			if err != nil {
				return err
			}
			if len(servers[name]) != want {
				return fmt.Errorf("%s has %d servers: %v", name, len(servers[name]), servers[name])
			}
			got[lb.Name] = servers[name]
			return nil
		})
	}
	t.Logf("every LB's Traefik lists the %d servers of %s (%s)", want, svc, time.Since(t0).Round(time.Millisecond))
	return got
}
