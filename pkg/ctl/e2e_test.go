package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/store"
)

// created is when the test store says every object was created; ctl's clock is an hour later,
// so every AGE is "60m" and outputs can be compared whole.
var (
	created = time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	ctlNow  = created.Add(time.Hour)
)

const token = "e2e-token"

type cluster struct {
	st  *store.Memory
	url string

	mu sync.Mutex
	// before, when set, runs before the API server handles each request (to inject races).
	before func(*http.Request)
}

func (c *cluster) setBefore(f func(*http.Request)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before = f
}

func newCluster(t *testing.T, opts ...func(*apiserver.Config)) *cluster {
	t.Helper()
	return newClusterStore(t, store.NewMemory(store.MemoryConfig{Clock: clocktesting.NewFakePassiveClock(created)}), opts...)
}

func newClusterStore(t *testing.T, st *store.Memory, opts ...func(*apiserver.Config)) *cluster {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	routes := `[{"entryPoints":["web"],"rule":"Host(` + "`hello.example.com`" + `) && PathPrefix(` + "`/`" + `)","service":"hello","servers":["10.0.0.1:32768","10.0.0.2:32771"]}]`
	cfg := apiserver.Config{
		Store:    st,
		Token:    token,
		Gatherer: prometheus.NewRegistry(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Undo: func(ctx context.Context, name string, _ int64) (v1.Object, error) {
			o, err := st.Get(ctx, v1.KindService, name)
			if err != nil {
				return nil, err
			}
			s := o.(*v1.Service)
			s.Spec.Image = "hello:1"
			return st.Update(ctx, s)
		},
		Handlers: map[string]http.Handler{"GET /api/routes": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, routes)
		})},
	}
	for _, o := range opts {
		o(&cfg)
	}
	api, err := apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{st: st}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		before := c.before
		c.mu.Unlock()
		if before != nil {
			before(r)
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cluster) env(stdin string, out, errw io.Writer, extra map[string]string) ctl.Env {
	vars := map[string]string{ctl.EnvServer: c.url, ctl.EnvToken: token}
	for k, v := range extra {
		vars[k] = v
	}
	return ctl.Env{
		In: strings.NewReader(stdin), Out: out, Err: errw,
		Getenv: func(k string) string { return vars[k] },
		Now:    func() time.Time { return ctlNow },
	}
}

func (c *cluster) runEnv(t *testing.T, stdin string, extra map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := ctl.Run(ctx, args, c.env(stdin, &out, &errb, extra))
	return result{code, out.String(), errb.String()}
}

func (c *cluster) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return c.runEnv(t, stdin, nil, args...)
}

func expect(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Fatalf("got exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

const helloV2 = `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"hello"},"spec":{"image":"hello:2","replicas":2,"ports":[{"name":"http","containerPort":8080}],"routes":{"http":[{"host":"hello.example.com"}]}}}`

func TestApplyGetDescribeDelete(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()

	expect(t, c.run(t, "", "apply", "-f", "testdata/gospec"), 0,
		"service/hello created\nsecret/hello-db created\n", "gospec: printed 2 objects\n")
	expect(t, c.run(t, "", "apply", "-f", "testdata/gospec"), 0,
		"service/hello unchanged\nsecret/hello-db unchanged\n", "gospec: printed 2 objects\n")
	expect(t, c.run(t, helloV2, "apply", "-f", "-", "--dry-run"), 0, "service/hello configured (server dry run)\n", "")
	if o, _ := c.st.Get(ctx, v1.KindService, "hello"); o.(*v1.Service).Spec.Image != "hello:1" {
		t.Fatal("dry run changed the object")
	}
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello configured\n", "")
	if o, _ := c.st.Get(ctx, v1.KindService, "hello"); o.(*v1.Service).Spec.Image != "hello:2" || o.GetMetadata().Generation != 2 {
		t.Fatalf("not updated: %+v", o)
	}
	expect(t, c.run(t, "", "apply", "-f", "testdata/jsondir"), 0,
		"service/web created\ndnsrecord/www created\nlease/lb created\n", "")

	expect(t, c.run(t, "", "get", "svc"), 0,
		"NAME    IMAGE        READY   UP-TO-DATE   STATUS    AGE\n"+
			"hello   hello:2      0/2     0            Pending   60m\n"+
			"web     nginx:1.27   0/1     0            Pending   60m\n", "")
	expect(t, c.run(t, "", "get", "services", "hello", "-o", "wide"), 0,
		"NAME    IMAGE     READY   UP-TO-DATE   STATUS    VIRTUAL-IP   PORTS           ROUTES              NODES    HOST-ACCESS   AGE\n"+
			"hello   hello:2   0/2     0            Pending   <none>       http:8080/tcp   hello.example.com   <none>   -             60m\n", "")
	expect(t, c.run(t, "", "get", "secrets"), 0, "NAME       KEYS       AGE\nhello-db   password   60m\n", "")
	expect(t, c.run(t, "", "get", "dns"), 0,
		"NAME   TYPE   RECORD            CONTENT      SYNCED    AGE\nwww    A      www.example.com   192.0.2.10   Unknown   60m\n", "")
	expect(t, c.run(t, "", "get", "rs"), 0, "", "No resources found.\n")
	expect(t, c.run(t, "", "get", "svc", "-l", "app=nothing"), 0, "", "No resources found.\n")

	r := c.run(t, "", "get", "svc/hello", "-o", "json")
	var s v1.Service
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &s) != nil || s.Spec.Image != "hello:2" || s.Metadata.Generation != 2 {
		t.Fatalf("get -o json: %+v", r)
	}
	r = c.run(t, "", "get", "secrets", "-o", "json")
	var l struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &l) != nil || l.Kind != "SecretList" || len(l.Items) != 1 {
		t.Fatalf("get secrets -o json: %+v", r)
	}
	if strings.Contains(r.stdout, "hunter2") || !strings.Contains(r.stdout, v1.Redacted) {
		t.Fatalf("secret value shown: %s", r.stdout)
	}
	r = c.run(t, "", "describe", "secret", "hello-db")
	if r.code != 0 || strings.Contains(r.stdout, "hunter2") || !strings.Contains(r.stdout, "Keys:              password") {
		t.Fatalf("describe secret: %+v", r)
	}
	r = c.run(t, "", "describe", "svc", "hello")
	for _, want := range []string{"Name:              hello", "Image:             hello:2", "Replicas:          2 desired, 0 ready, 0 updated, 0 total", "Generation:        2", "  web:             http hello.example.com"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe svc lacks %q:\n%s", want, r.stdout)
		}
	}

	expect(t, c.run(t, "", "delete", "svc", "web"), 0, "service/web deleted\n", "")
	expect(t, c.run(t, "", "delete", "svc", "web"), 1, "", "error: services/web: not found\n")
	expect(t, c.run(t, "", "delete", "svc", "web", "--ignore-not-found"), 0, "", "")
	expect(t, c.run(t, "", "delete", "-f", "testdata/gospec"), 0, "service/hello deleted\nsecret/hello-db deleted\n", "gospec: printed 2 objects\n")
	if l, _, _ := c.st.List(ctx, v1.KindService, v1.Selector{}); len(l) != 0 {
		t.Fatalf("services left: %d", len(l))
	}
}

func TestInvalidInputChangesNothing(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	bad := `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"web"},"spec":{"image":"nginx","ports":[{"containerPort":0}]}}`
	good := `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"ok"},"spec":{"image":"nginx"}}`
	expect(t, c.run(t, good+"\n"+bad, "apply", "-f", "-"), 1, "",
		"error: services/web: spec.ports[0].containerPort: must be 1-65535, got 0\n")
	expect(t, c.run(t, `{"kind":"Service","metadata":{"name":"web"},"spec":{"image":"nginx","replica":2}}`, "apply", "-f", "-"), 1, "",
		"error: stdin: services/web: spec.replica: unknown field\n")
	expect(t, c.run(t, `{"kind":"Service",`, "apply", "-f", "-"), 1, "",
		"error: stdin: malformed JSON after 0 object(s): unexpected EOF\n")
	expect(t, c.run(t, "", "get", "pods"), 1, "",
		"error: unknown kind \"pods\" (known: configs, cronjobs, dnsrecords, events, jobs, leases, nodes, replicasets, secrets, services, routes; short: svc, dns, rs, no, ev, cm, cj)\n")
	expect(t, c.run(t, "", "get", "svc", "-o", "yaml"), 1, "", "error: unknown output format \"yaml\" (want table, wide or json)\n")
	if l, _, _ := c.st.List(ctx, v1.KindService, v1.Selector{}); len(l) != 0 {
		t.Fatalf("an invalid apply stored %d services", len(l))
	}
	r := c.run(t, "", "get", "svc", "-l", "a in (b")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: label selector \"a in (b\": ") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("bad selector: %+v", r)
	}

	// A stale resourceVersion is refused by the server: 409 in one line.
	expect(t, c.run(t, good, "apply", "-f", "-"), 0, "service/ok created\n", "")
	stale := `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"ok","resourceVersion":"1"},"spec":{"image":"nginx:2"}}`
	expect(t, c.run(t, good, "apply", "-f", "-"), 0, "service/ok unchanged\n", "")
	c.run(t, strings.Replace(good, "nginx", "nginx:1", 1), "apply", "-f", "-")
	r = c.run(t, stale, "apply", "-f", "-")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: services/ok: resourceVersion conflict") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("stale resourceVersion: %+v", r)
	}
}

func TestServerErrorsAndAuth(t *testing.T) {
	c := newCluster(t)
	r := c.runEnv(t, "", map[string]string{ctl.EnvToken: ""}, "get", "svc")
	expect(t, r, 1, "", "error: "+c.url+": missing bearer token: pass --token or set CONSTELLATION_TOKEN\n")
	r = c.runEnv(t, "", map[string]string{ctl.EnvToken: ""}, "get", "svc", "--token", "wrong")
	expect(t, r, 1, "", "error: "+c.url+": invalid bearer token: pass the cluster's token with --token, --token-file or CONSTELLATION_TOKEN\n")

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	r = c.run(t, "", "get", "svc", "--server", dead.URL)
	expect(t, r, 1, "", "error: cannot reach the Constellation API at "+dead.URL+" (connection refused): is an agent running there? Point ctl elsewhere with --server or CONSTELLATION_SERVER\n")
	r = c.run(t, helloV2, "apply", "-f", "-", "--server", dead.URL)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("apply to a dead server: %+v", r)
	}
}

func TestDiff(t *testing.T) {
	c := newCluster(t)
	r := c.run(t, helloV2, "diff", "-f", "-")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "--- /dev/null\n+++ services/hello (after apply)\n") {
		t.Fatalf("diff of a new object: %+v", r)
	}
	c.run(t, helloV2, "apply", "-f", "-")
	expect(t, c.run(t, helloV2, "diff", "-f", "-"), 0, "", "")
	r = c.run(t, strings.Replace(helloV2, `"replicas":2`, `"replicas":3`, 1), "diff", "-f", "-")
	expect(t, r, 1, "--- services/hello (live)\n+++ services/hello (after apply)\n@@ -6,7 +6,7 @@\n"+
		"   },\n   \"spec\": {\n     \"image\": \"hello:2\",\n-    \"replicas\": 2,\n+    \"replicas\": 3,\n     \"ports\": [\n       {\n         \"name\": \"http\",\n", "")
	r = c.run(t, `{"kind":"Service","metadata":{"name":"x"},"spec":{}}`, "diff", "-f", "-")
	if r.code != 2 || !strings.Contains(r.stderr, "services/x: spec.image") {
		t.Fatalf("diff of an invalid object: %+v", r)
	}
}

func createNode(t *testing.T, st store.Store, name string, role v1.RaftRole) {
	t.Helper()
	ctx := context.Background()
	n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: name}}
	o, err := st.Create(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	n = o.(*v1.Node)
	n.Status = v1.NodeStatus{RaftRole: role, GossipState: "alive", AgentVersion: "v0.1.0",
		Addresses:  v1.NodeAddresses{Advertise: "10.0.0." + name[1:]},
		Conditions: []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: created}}}
	if _, err := st.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func TestNodes(t *testing.T) {
	c := newCluster(t)
	createNode(t, c.st, "n1", v1.RaftLeader)
	expect(t, c.run(t, "", "get", "nodes"), 0,
		"NAME   STATUS   ROLE     GOSSIP   ADDRESS    VERSION   AGE\nn1     Ready    leader   alive    10.0.0.1   v0.1.0    60m\n",
		"1 voter: this cluster cannot survive the loss of a node (quorum needs 3 voters)\n")
	createNode(t, c.st, "n2", v1.RaftFollower)
	createNode(t, c.st, "n3", v1.RaftFollower)
	r := c.run(t, "", "get", "no")
	if r.stderr != "3 voters: survives the loss of 1\n" {
		t.Fatalf("quorum note: %q", r.stderr)
	}

	// An agent rewrites the node's status between ctl's read and its write, three times: the
	// compare-and-swap fails with 409 and ctl reads again.
	races := 0
	c.setBefore(func(r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/apis/v1/nodes/n1" || races == 3 {
			return
		}
		races++
		o, err := c.st.Get(r.Context(), v1.KindNode, "n1")
		if err != nil {
			t.Error(err)
			return
		}
		n := o.(*v1.Node)
		n.Status.GossipState = fmt.Sprintf("alive-%d", races)
		if _, err := c.st.UpdateStatus(r.Context(), n); err != nil {
			t.Error(err)
		}
	})
	expect(t, c.run(t, "", "cordon", "n1"), 0, "node/n1 cordoned\n", "")
	c.setBefore(nil)
	if races != 3 {
		t.Fatalf("%d injected conflicts, want 3", races)
	}
	if o, _ := c.st.Get(context.Background(), v1.KindNode, "n1"); o.(*v1.Node).Status.GossipState != "alive-3" {
		t.Fatal("cordon overwrote the agent's status")
	}
	expect(t, c.run(t, "", "cordon", "n1"), 0, "node/n1 already cordoned\n", "")
	o, _ := c.st.Get(context.Background(), v1.KindNode, "n1")
	if !o.(*v1.Node).Spec.Unschedulable {
		t.Fatal("cordon did not set spec.unschedulable")
	}
	r = c.run(t, "", "get", "node", "n1")
	if !strings.Contains(r.stdout, "Ready,SchedulingDisabled") {
		t.Fatalf("cordoned node row: %s", r.stdout)
	}
	expect(t, c.run(t, "", "drain", "n2"), 0, "node/n2 draining: its replicas are moving to other nodes\n", "")
	o, _ = c.st.Get(context.Background(), v1.KindNode, "n2")
	if n := o.(*v1.Node); !n.Spec.Drain || !n.Spec.Unschedulable {
		t.Fatalf("drain: %+v", n.Spec)
	}
	expect(t, c.run(t, "", "uncordon", "n2"), 0, "node/n2 uncordoned\n", "")
	expect(t, c.run(t, "", "uncordon", "n3"), 0, "node/n3 already uncordoned\n", "")
	expect(t, c.run(t, "", "cordon", "n9"), 1, "", "error: nodes/n9: not found\n")

	// describe node lists the replicas it runs, from Service statuses.
	c.run(t, helloV2, "apply", "-f", "-")
	so, _ := c.st.Get(context.Background(), v1.KindService, "hello")
	s := so.(*v1.Service)
	s.Status.ReplicaStatuses = []v1.ReplicaStatus{{Index: 0, Node: "n1", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "10.0.0.1:32768"}, {Index: 1, Node: "n2", State: v1.ReplicaRunning}}
	if _, err := c.st.UpdateStatus(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	r = c.run(t, "", "describe", "node", "n1")
	if !strings.Contains(r.stdout, "  SERVICE  INDEX  STATE    HEALTH   ADDRESS\n  hello    0      running  healthy  10.0.0.1:32768\n") {
		t.Fatalf("describe node:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "Unschedulable:     true") {
		t.Fatalf("describe node:\n%s", r.stdout)
	}
}

func TestRoutesAndUndoAndVersion(t *testing.T) {
	c := newCluster(t)
	want := "ENTRYPOINTS   RULE                                           SERVICE   SERVERS\n" +
		"web           Host(`hello.example.com`) && PathPrefix(`/`)   hello     10.0.0.1:32768,10.0.0.2:32771\n"
	expect(t, c.run(t, "", "routes"), 0, want, "")
	expect(t, c.run(t, "", "get", "routes"), 0, want, "")
	c.run(t, helloV2, "apply", "-f", "-")
	expect(t, c.run(t, "", "rollout", "undo", "hello"), 0, "service/hello rolled back (image hello:1, generation 2)\n", "")
	expect(t, c.run(t, "", "rollout", "undo", "nope"), 1, "", "error: services/nope: not found\n")
	createNode(t, c.st, "n1", v1.RaftLeader)
	r := c.run(t, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ctl: dev (") || !strings.HasSuffix(r.stdout, "agents: v0.1.0 on n1\n") {
		t.Fatalf("version: %+v", r)
	}
}

// statusWriter plays the status controller for one Service: after a short delay it reports the
// rollout of each new generation with the given final conditions.
func statusWriter(ctx context.Context, st store.Store, name string, final func(*v1.Service)) {
	for ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		o, err := st.Get(ctx, v1.KindService, name)
		if err != nil {
			continue
		}
		s := o.(*v1.Service)
		if s.Status.ObservedGeneration >= s.Metadata.Generation {
			continue
		}
		s.Status.ObservedGeneration = s.Metadata.Generation
		s.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionFalse, Reason: v1.ReasonReplicasNotReady, LastTransitionTime: created},
			{Type: v1.ServiceProgressing, Status: v1.ConditionTrue, Reason: v1.ReasonRollingUpdate, LastTransitionTime: created}}
		s.Status.ReadyReplicas, s.Status.UpdatedReplicas = 1, 1
		o, err = st.UpdateStatus(ctx, s)
		if err != nil {
			continue
		}
		time.Sleep(50 * time.Millisecond)
		s = o.(*v1.Service)
		final(s)
		_, _ = st.UpdateStatus(ctx, s)
	}
}

func TestApplyWait(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go statusWriter(ctx, c.st, "hello", func(s *v1.Service) {
		s.Status.ReadyReplicas, s.Status.UpdatedReplicas = 2, 2
		s.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionTrue, Reason: v1.ReasonAllReplicasReady, LastTransitionTime: created}}
	})
	r := c.run(t, helloV2, "apply", "-f", "-", "--wait", "--timeout", "30s")
	// Which progress lines appear depends on how fast ctl looks; their order does not.
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "service/hello created\n") || !strings.HasSuffix(r.stdout, "service/hello rolled out: 2/2 ready\n") {
		t.Fatalf("apply --wait: %+v", r)
	}
	if p0, p1 := strings.Index(r.stdout, "hello: 0/2 ready"), strings.Index(r.stdout, "hello: 1/2 ready, 1 updated"); p0 > p1 && p1 >= 0 {
		t.Fatalf("progress out of order:\n%s", r.stdout)
	}
	cancel()

	c2 := newCluster(t)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go statusWriter(ctx2, c2.st, "hello", func(s *v1.Service) {
		s.Status.Conditions = []v1.Condition{{Type: v1.ServiceProgressing, Status: v1.ConditionFalse, Reason: v1.ReasonRolloutFailed, Message: "replica 1 exited with status 1", LastTransitionTime: created}}
	})
	r = c2.run(t, helloV2, "apply", "-f", "-", "--wait", "--timeout", "30s")
	if r.code != 1 || r.stderr != "error: service/hello: rollout failed: RolloutFailed: replica 1 exited with status 1\n" {
		t.Fatalf("failed rollout: %+v", r)
	}

	c3 := newCluster(t)
	start := time.Now()
	r = c3.run(t, helloV2, "apply", "-f", "-", "--wait", "--timeout", "300ms")
	if r.code != 1 || r.stderr != "error: timed out waiting for service/hello to roll out (last: hello: 0/2 ready, 0 updated)\n" {
		t.Fatalf("timeout: %+v", r)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("--timeout 300ms took %v", time.Since(start))
	}
}

func TestGetWatch(t *testing.T) {
	c := newCluster(t)
	c.run(t, helloV2, "apply", "-f", "-")
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() { done <- ctl.Run(ctx, []string{"get", "svc", "-w"}, c.env("", &out, &errb, nil)) }()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s\nstderr: %s", s, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("hello   hello:2")
	c.run(t, strings.Replace(strings.Replace(helloV2, "hello", "other", 1), "hello:2", "other:1", 1), "apply", "-f", "-")
	waitFor("other   other:1   0/2     0            Pending   60m\n")
	c.run(t, "", "delete", "svc", "other")
	waitFor("service/other deleted\n")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("get -w ended with %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not stop on cancel")
	}
	want := "NAME    IMAGE     READY   UP-TO-DATE   STATUS    AGE\n" +
		"hello   hello:2   0/2     0            Pending   60m\n" +
		"other   other:1   0/2     0            Pending   60m\n" +
		"service/other deleted\n"
	if out.String() != want {
		t.Fatalf("get -w output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// The server closes watches after WatchTimeout; get -w resumes from the last revision it saw,
// missing nothing and repeating nothing.
func TestGetWatchResumes(t *testing.T) {
	c := newCluster(t, func(cfg *apiserver.Config) { cfg.WatchTimeout = 50 * time.Millisecond })
	c.run(t, helloV2, "apply", "-f", "-")
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() {
		done <- ctl.Run(ctx, []string{"get", "svc", "hello", "-w", "-o", "json"}, c.env("", &out, &errb, nil))
	}()
	time.Sleep(400 * time.Millisecond) // several server-side timeouts
	c.run(t, strings.Replace(helloV2, `"replicas":2`, `"replicas":3`, 1), "apply", "-f", "-")
	time.Sleep(300 * time.Millisecond)
	c.run(t, strings.Replace(helloV2, `"replicas":2`, `"replicas":4`, 1), "apply", "-f", "-")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), `"type":"MODIFIED"`) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), `"type":"MODIFIED"`); n != 2 {
		t.Fatalf("%d MODIFIED events, want 2:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `"replicas":4`) {
		t.Fatalf("last change missing:\n%s", out.String())
	}
}

func TestDrainWait(t *testing.T) {
	c := newCluster(t)
	createNode(t, c.st, "n1", v1.RaftLeader)
	createNode(t, c.st, "n2", v1.RaftFollower)
	c.run(t, helloV2, "apply", "-f", "-")
	ctx := context.Background()
	o, _ := c.st.Get(ctx, v1.KindService, "hello")
	s := o.(*v1.Service)
	s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "n1"}, {Index: 1, Node: "n2"}}
	s.Status.ReplicaStatuses = []v1.ReplicaStatus{{Index: 1, Node: "n2", State: v1.ReplicaRunning}}
	if _, err := c.st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	go func() {
		// The scheduler moves replica 1 once it sees the drain.
		for {
			time.Sleep(20 * time.Millisecond)
			o, err := c.st.Get(ctx, v1.KindNode, "n2")
			if err != nil || !o.(*v1.Node).Spec.Drain {
				continue
			}
			time.Sleep(300 * time.Millisecond) // after ctl's first look
			o, _ = c.st.Get(ctx, v1.KindService, "hello")
			s := o.(*v1.Service)
			s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "n1"}, {Index: 1, Node: "n1"}}
			s.Status.ReplicaStatuses = []v1.ReplicaStatus{{Index: 1, Node: "n1", State: v1.ReplicaRunning}}
			if _, err := c.st.UpdateStatus(ctx, s); err == nil {
				return
			}
		}
	}()
	// The progress line is there unless the scheduler beat ctl's first look (a loaded machine).
	r := c.run(t, "", "drain", "n2", "--wait", "--timeout", "20s")
	if want := "node/n2 draining: its replicas are moving to other nodes\nn2: 1 replicas left (hello/1)\nnode/n2 has no replicas left\n"; r.code != 0 || r.stderr != "" ||
		(r.stdout != want && r.stdout != strings.Replace(want, "n2: 1 replicas left (hello/1)\n", "", 1)) {
		t.Fatalf("drain --wait: %+v", r)
	}
	r = c.run(t, "", "drain", "n1", "--wait", "--timeout", "100ms")
	expect(t, r, 1, "node/n1 draining: its replicas are moving to other nodes\nn1: 2 replicas left (hello/0, hello/1)\n",
		"error: timed out waiting for node/n1 to drain (left: hello/0, hello/1)\n")
}

func TestDeleteWithFinalizer(t *testing.T) {
	c := newCluster(t)
	d := &v1.DNSRecord{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindDNSRecord},
		Metadata: v1.ObjectMeta{Name: "www", Finalizers: []string{"constellation/dns"}},
		Spec:     v1.DNSRecordSpec{Zone: "example.com", Name: "www.example.com", Type: v1.RecordA, TTL: 60, Content: "192.0.2.1"}}
	if _, err := c.st.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	expect(t, c.run(t, "", "delete", "dns", "www", "--wait=false"), 0, "dnsrecord/www marked for deletion (waiting for finalizers: constellation/dns)\n", "")
	// With --wait (the default), ctl waits for the finalizer, which no controller runs here.
	expect(t, c.run(t, "", "delete", "dns", "www", "--timeout", "300ms"), 1,
		"dnsrecord/www marked for deletion (waiting for finalizers: constellation/dns)\ndnsrecord/www: waiting for finalizers: constellation/dns\n",
		"error: timed out after 300ms waiting for deletion (left: dnsrecord/www: waiting for finalizers: constellation/dns); --timeout waits longer, --wait=false does not wait\n")
}

// apply --wait on a Service unchanged for longer than the store's watch history: its own
// resourceVersion is compacted (410), so ctl reads the list's revision and still sees the rollout.
func TestApplyWaitAfterCompaction(t *testing.T) {
	c := newClusterStore(t, store.NewMemory(store.MemoryConfig{Clock: clocktesting.NewFakePassiveClock(created), History: 3}))
	c.run(t, helloV2, "apply", "-f", "-")
	for i := range 5 {
		c.run(t, strings.Replace(helloV2, `"name":"hello"`, fmt.Sprintf(`"name":"filler-%d"`, i), 1), "apply", "-f", "-")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go statusWriter(ctx, c.st, "hello", func(s *v1.Service) {
		s.Status.ReadyReplicas, s.Status.UpdatedReplicas = 2, 2
		s.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionTrue, LastTransitionTime: created}}
	})
	r := c.run(t, helloV2, "apply", "-f", "-", "--wait", "--timeout", "20s")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "service/hello rolled out: 2/2 ready\n") {
		t.Fatalf("apply --wait after compaction: %+v", r)
	}
}

// get -w reconnects after the server closes the watch; when the revision it stopped at has been
// compacted meanwhile (410), it lists again, shows the objects as they are, and goes on.
func TestGetWatchRelistsAfterCompaction(t *testing.T) {
	c := newClusterStore(t, store.NewMemory(store.MemoryConfig{Clock: clocktesting.NewFakePassiveClock(created), History: 2}),
		func(cfg *apiserver.Config) { cfg.WatchTimeout = 50 * time.Millisecond })
	c.run(t, helloV2, "apply", "-f", "-")
	var watches int
	c.setBefore(func(r *http.Request) {
		if r.URL.Query().Get("watch") != "true" {
			return
		}
		watches++
		if watches != 2 {
			return
		}
		// While ctl reconnects, more changes than the history keeps.
		for i := 3; i <= 6; i++ {
			o, err := c.st.Get(r.Context(), v1.KindService, "hello")
			if err != nil {
				t.Error(err)
				return
			}
			s := o.(*v1.Service)
			s.Spec.Replicas = ptr(int32(i))
			if _, err := c.st.Update(r.Context(), s); err != nil {
				t.Error(err)
			}
		}
	})
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() { done <- ctl.Run(ctx, []string{"get", "svc", "-w"}, c.env("", &out, &errb, nil)) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "0/6") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "NAME    IMAGE     READY   UP-TO-DATE   STATUS    AGE\n" +
		"hello   hello:2   0/2     0            Pending   60m\n" +
		"hello   hello:2   0/6     0            Pending   60m\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func ptr[T any](v T) *T { return &v }
