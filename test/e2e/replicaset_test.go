package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 15: a Redis ReplicaSet with Sentinel (constellation-test/redis:7, Debian's binaries
// FROM scratch). Bootstrap makes e2e-redis-0 master; writes go through e2e-cache-primary (the
// mesh name of the agreed primary); the master's node is killed; Sentinel promotes a replica;
// status.primary follows; e2e-cache-primary reaches the new master; acknowledged writes are
// counted before and after, and any lost are reported.
func TestScenario15RedisReplicaSet(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 12*time.Minute)
	n1 := c.Nodes[0]
	redis := spec.Service("e2e-redis", "constellation-test/redis:7", spec.Replicas(3), spec.MaxPerNode(1),
		spec.Port("redis", 6379), spec.TCPHealth("redis", time.Second))
	// The client: a redis container on every node (redis-cli is in the image); it listens on
	// another port and is never a member.
	cli := spec.Service("e2e-rcli", "constellation-test/redis:7", spec.Replicas(3), spec.MaxPerNode(1),
		spec.Port("redis", 7000), spec.Args("--port", "7000", "--protected-mode", "no"))
	for _, s := range []*v1.Service{redis, cli} {
		if err := putService(ctx, n1, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"e2e-redis", "e2e-rcli"} {
		if _, err := harness.WaitServiceReady(ctx, c.Nodes, name, 3*time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	rs := &v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet},
		Metadata: v1.ObjectMeta{Name: "e2e-cache"},
		Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"e2e-redis"},
			Redis: &v1.RedisReplicaSet{Sentinel: "e2e-cache-sentinel", DownAfter: &v1.Duration{Duration: 3 * time.Second}}}}
	if _, err := n1.Client().Put(ctx, rs, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	api := n1 // until the kill; then a surviving node
	getRS := func() (*v1.ReplicaSet, error) {
		o, err := api.Client().Get(ctx, v1.KindReplicaSet, "e2e-cache")
		if err != nil {
			return nil, err
		}
		return o.(*v1.ReplicaSet), nil
	}
	agreed := func(r *v1.ReplicaSet) bool {
		cnd := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed)
		return cnd != nil && cnd.Status == v1.ConditionTrue
	}
	if err := waitUntil(ctx, 4*time.Minute, func() error {
		r, err := getRS()
		if err != nil {
			return err
		}
		ready := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetReady)
		if r.Status.Primary != "e2e-redis-0" || !agreed(r) || ready == nil || ready.Status != v1.ConditionTrue || r.Status.VirtualIP == "" {
			return fmt.Errorf("status %+v", r.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, c.DumpLogs(60))
	}
	r, _ := getRS()
	masterNode := ""
	for _, m := range r.Status.Members {
		t.Logf("member %s role %s health %s", m.Name, m.Role, m.Health)
	}
	if o, err := n1.Client().Get(ctx, v1.KindService, "e2e-redis"); err == nil {
		for _, rep := range o.(*v1.Service).Status.ReplicaStatuses {
			if rep.Index == 0 && rep.State == v1.ReplicaRunning {
				masterNode = rep.Node
			}
		}
	}
	if masterNode == "" {
		t.Fatal("no node for e2e-redis-0")
	}
	// The client on a node that survives.
	var clientNode *harness.Node
	for _, n := range c.Nodes {
		if n.Name != masterNode {
			clientNode = n
			break
		}
	}
	rcli := func(args ...string) (string, error) {
		id, err := clientNode.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service=e2e-rcli | head -1")
		if err != nil || strings.TrimSpace(id) == "" {
			return "", fmt.Errorf("client container on %s: %q %v", clientNode.Name, id, err)
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := clientNode.Exec(cctx, append([]string{"docker", "exec", strings.TrimSpace(id), "/usr/bin/redis-cli", "-h", "e2e-cache-primary", "-p", "6379"}, args...)...)
		return strings.TrimSpace(out), err
	}
	if err := waitUntil(ctx, time.Minute, func() error {
		out, err := rcli("ROLE")
		if err != nil || !strings.HasPrefix(out, "master") {
			return fmt.Errorf("ROLE through e2e-cache-primary: %q %v", out, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// 200 acknowledged increments through the primary's name.
	if out, err := rcli("-r", "200", "INCR", "acked"); err != nil {
		t.Fatalf("INCR: %v %s", err, out)
	}
	before, err := rcli("GET", "acked")
	if err != nil {
		t.Fatal(err)
	}
	// Let the replicas catch up before the kill (what is lost otherwise is asynchronous
	// replication's window; the count below reports it either way).
	time.Sleep(time.Second)

	api = clientNode
	t0 := time.Now()
	if err := c.Node(masterNode).Kill(ctx); err != nil {
		t.Fatal(err)
	}
	var newPrimary string
	if err := waitUntil(ctx, 3*time.Minute, func() error {
		r, err := getRS()
		if err != nil {
			return err
		}
		if r.Status.Primary == "e2e-redis-0" || !agreed(r) {
			return fmt.Errorf("primary %q agreed %v", r.Status.Primary, agreed(r))
		}
		newPrimary = r.Status.Primary
		return nil
	}); err != nil {
		t.Fatalf("failover: %v\n%s", err, c.DumpLogs(80))
	}
	tStatus := time.Since(t0)
	var after string
	if err := waitUntil(ctx, time.Minute, func() error {
		out, err := rcli("ROLE")
		if err != nil || !strings.HasPrefix(out, "master") {
			return fmt.Errorf("ROLE through e2e-cache-primary: %q %v", out, err)
		}
		after, err = rcli("GET", "acked")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tRoute := time.Since(t0)
	b, _ := strconv.Atoi(before)
	a, _ := strconv.Atoi(after)
	t.Logf("kill of %s (master e2e-redis-0) → status.primary %s in %s, → e2e-cache-primary reaches it in %s; acknowledged before the kill %d, on the new master %d, lost %d",
		masterNode, newPrimary, tStatus.Round(time.Millisecond), tRoute.Round(time.Millisecond), b, a, max(0, b-a))
	// Writes acknowledged by the new master are kept.
	if out, err := rcli("-r", "100", "INCR", "acked"); err != nil {
		t.Fatalf("INCR after failover: %v %s", err, out)
	}
	final, _ := rcli("GET", "acked")
	if f, _ := strconv.Atoi(final); f != a+100 {
		t.Fatalf("after 100 acknowledged increments on the new master the counter is %d, want %d", f, a+100)
	}
}
