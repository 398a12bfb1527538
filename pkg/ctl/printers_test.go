package ctl

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time { t := now.Add(-d); return &t }

func i32(v int32) *int32 { return &v }

func cond(t v1.ConditionType, s v1.ConditionStatus, reason v1.ConditionReason) v1.Condition {
	return v1.Condition{Type: t, Status: s, Reason: reason, Message: "", LastTransitionTime: now.Add(-90 * time.Second)}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func fixtureServices() []v1.Object {
	hello := &v1.Service{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: "hello", Generation: 2, ResourceVersion: "41", UID: "0b7c", CreationTimestamp: ago(3*time.Hour + 12*time.Minute), Labels: map[string]string{"app": "hello"}},
		Spec: v1.ServiceSpec{
			Image: "hello:2", Replicas: i32(3),
			Env:         []v1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "DB_PASSWORD", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "password"}}},
			Ports:       []v1.ServicePort{{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP}},
			HealthCheck: &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz", Port: "http"}, Interval: &v1.Duration{Duration: 2 * time.Second}, Timeout: &v1.Duration{Duration: time.Second}, Retries: i32(3)},
			Routes:      &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "hello.example.com", EntryPoints: []string{"web"}}, {Host: "api.example.com", PathPrefix: "/hello", EntryPoints: []string{"websecure"}, TLS: &v1.RouteTLS{}}}},
			Update:      &v1.UpdateStrategy{Order: v1.StartFirst, MaxSurge: i32(1), MaxUnavailable: i32(0)},
		},
		Status: v1.ServiceStatus{
			ObservedGeneration: 2, Replicas: 4, ReadyReplicas: 2, UpdatedReplicas: 1,
			ReplicaStatuses: []v1.ReplicaStatus{
				{Index: 0, Node: "n1", ContainerID: "4f2a9c1b7d3e8f00", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "10.0.0.1:32768"},
				{Index: 1, Node: "n2", ContainerID: "9e8d7c6b5a4f3e21", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Address: "10.0.0.2:32771"},
				{Index: 2, Node: "n1", State: v1.ReplicaCreated, Health: v1.HealthStarting, Message: "new spec"},
			},
			Conditions: []v1.Condition{cond(v1.ServiceReady, v1.ConditionFalse, v1.ReasonReplicasNotReady), cond(v1.ServiceProgressing, v1.ConditionTrue, v1.ReasonRollingUpdate), cond(v1.ServiceDegraded, v1.ConditionFalse, "")},
			VirtualIP:  "10.213.41.7",
			ReplicaVirtualIPs: []v1.ReplicaVirtualIP{{Index: 0, IP: "10.213.41.8"}, {Index: 1, IP: "10.213.200.3"},
				{Index: 2, IP: "10.213.9.12"}, {Index: 3, IP: "10.213.77.1"}},
		},
	}
	db := &v1.Service{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: "db", Generation: 1, CreationTimestamp: ago(50 * time.Hour)},
		Spec: v1.ServiceSpec{Image: "redis:7", Replicas: i32(1), Ports: []v1.ServicePort{{ContainerPort: 6379, Protocol: v1.ProtocolTCP}}, Routes: &v1.Routes{TCP: []v1.TCPRoute{{HostSNI: "*", EntryPoint: "redis"}}},
			HostAccess: true, Privileged: true, Volumes: []v1.VolumeMount{{Source: "/srv/redis", Target: "/data"}}},
		Status: v1.ServiceStatus{ObservedGeneration: 1, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1,
			ReplicaStatuses: []v1.ReplicaStatus{{Index: 0, Node: "n3", State: v1.ReplicaRunning, Health: v1.HealthHealthy}},
			VirtualIP:       "10.213.0.2", ReplicaVirtualIPs: []v1.ReplicaVirtualIP{{Index: 0, IP: "10.213.0.3"}},
			Conditions: []v1.Condition{cond(v1.ServiceReady, v1.ConditionTrue, v1.ReasonAllReplicasReady), cond(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonRolloutComplete)}},
	}
	broken := &v1.Service{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: "broken", Generation: 1, CreationTimestamp: ago(5*time.Minute + 30*time.Second)},
		Spec:     v1.ServiceSpec{Image: "nosuch:latest", Replicas: i32(2)},
		Status:   v1.ServiceStatus{ObservedGeneration: 1, Conditions: []v1.Condition{cond(v1.ServiceReady, v1.ConditionFalse, v1.ReasonReplicasNotReady), cond(v1.ServiceDegraded, v1.ConditionTrue, v1.ReasonImageNotFound)}},
	}
	fresh := &v1.Service{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: "fresh", Generation: 1, CreationTimestamp: ago(4 * time.Second)},
		Spec:     v1.ServiceSpec{Image: "fresh:1", Volumes: []v1.VolumeMount{{Source: "/srv/fresh", Target: "/data"}}},
	}
	return []v1.Object{broken, db, fresh, hello}
}

func fixtureNodes(roles ...v1.RaftRole) []v1.Object {
	var out []v1.Object
	for i, r := range roles {
		n := &v1.Node{
			TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode},
			Metadata: v1.ObjectMeta{Name: "n" + string(rune('1'+i)), CreationTimestamp: ago(9 * 24 * time.Hour)},
			Spec:     v1.NodeSpec{Labels: map[string]string{"zone": "a", "disk": "ssd"}},
			Status: v1.NodeStatus{
				Addresses:   v1.NodeAddresses{Advertise: "10.0.0." + string(rune('1'+i)), API: "10.0.0." + string(rune('1'+i)) + ":7480"},
				RaftRole:    r,
				GossipState: "alive", AgentVersion: "v0.1.0", LastSeen: ago(time.Second),
				Conditions: []v1.Condition{cond(v1.NodeReady, v1.ConditionTrue, "")},
			},
		}
		out = append(out, n)
	}
	return out
}

func fixtureOthers() map[string][]v1.Object {
	tm := func(k string) v1.TypeMeta { return v1.TypeMeta{APIVersion: v1.APIVersion, Kind: k} }
	return map[string][]v1.Object{
		v1.KindDNSRecord: {
			&v1.DNSRecord{TypeMeta: tm(v1.KindDNSRecord), Metadata: v1.ObjectMeta{Name: "lb", CreationTimestamp: ago(time.Hour)},
				Spec:   v1.DNSRecordSpec{Zone: "example.com", Name: "lb.example.com", Type: v1.RecordA, TTL: 60, Target: &v1.DNSTarget{Lease: "lb"}},
				Status: v1.DNSRecordStatus{Records: []v1.ProviderRecord{{ID: "r1", Content: "10.0.0.1"}}, Conditions: []v1.Condition{cond(v1.DNSSynced, v1.ConditionTrue, v1.ReasonSynced)}}},
			&v1.DNSRecord{TypeMeta: tm(v1.KindDNSRecord), Metadata: v1.ObjectMeta{Name: "nodes", CreationTimestamp: ago(time.Hour)},
				Spec:   v1.DNSRecordSpec{Zone: "example.com", Name: "nodes.example.com", Type: v1.RecordA, TTL: 60, Target: &v1.DNSTarget{NodeSelector: map[string]string{"zone": "a"}}},
				Status: v1.DNSRecordStatus{Conditions: []v1.Condition{cond(v1.DNSSynced, v1.ConditionFalse, v1.ReasonZoneNotFound)}}},
			&v1.DNSRecord{TypeMeta: tm(v1.KindDNSRecord), Metadata: v1.ObjectMeta{Name: "www", CreationTimestamp: ago(2 * time.Minute)},
				Spec: v1.DNSRecordSpec{Zone: "example.com", Name: "www.example.com", Type: v1.RecordCNAME, TTL: 60, Content: "lb.example.com"}},
		},
		v1.KindLease: {
			&v1.Lease{TypeMeta: tm(v1.KindLease), Metadata: v1.ObjectMeta{Name: "controller", CreationTimestamp: ago(26 * time.Hour)},
				Spec: v1.LeaseSpec{HolderIdentity: "n2", LeaseDurationSeconds: 15, AcquireTime: ago(time.Hour), RenewTime: ago(3 * time.Second), LeaseTransitions: 4}},
			&v1.Lease{TypeMeta: tm(v1.KindLease), Metadata: v1.ObjectMeta{Name: "lb", CreationTimestamp: ago(26 * time.Hour)}},
		},
		v1.KindReplicaSet: {
			&v1.ReplicaSet{TypeMeta: tm(v1.KindReplicaSet), Metadata: v1.ObjectMeta{Name: "cache", CreationTimestamp: ago(30 * time.Minute)},
				Spec:   v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"redis"}, Redis: &v1.RedisReplicaSet{MasterName: "cache", Sentinel: "sentinel", Quorum: 2}},
				Status: v1.ReplicaSetStatus{Primary: "redis-0", Members: []v1.MemberStatus{{Name: "redis-0", Role: "master", Health: "healthy"}, {Name: "redis-1", Role: "replica", Health: "healthy"}}, Conditions: []v1.Condition{cond(v1.ReplicaSetReady, v1.ConditionTrue, "")}}},
			&v1.ReplicaSet{TypeMeta: tm(v1.KindReplicaSet), Metadata: v1.ObjectMeta{Name: "mongo", CreationTimestamp: ago(30 * time.Minute)},
				Spec: v1.ReplicaSetSpec{Engine: v1.EngineMongo, Members: []string{"mongo-a", "mongo-b"}, Mongo: &v1.MongoReplicaSet{ReplSetName: "rs0"}}},
		},
		v1.KindSecret: {
			&v1.Secret{TypeMeta: tm(v1.KindSecret), Metadata: v1.ObjectMeta{Name: "db", CreationTimestamp: ago(10 * time.Minute)},
				Spec: v1.SecretSpec{Data: v1.SecretData{"password": "hunter2", "user": "admin"}}},
		},
	}
}

func TestTablesGolden(t *testing.T) {
	cases := []struct {
		name string
		kind string
		objs []v1.Object
		wide bool
	}{
		{"services.txt", v1.KindService, fixtureServices(), false},
		{"services-wide.txt", v1.KindService, fixtureServices(), true},
		{"nodes.txt", v1.KindNode, fixtureNodes(v1.RaftLeader, v1.RaftFollower, v1.RaftLearner), false},
		{"nodes-wide.txt", v1.KindNode, fixtureNodes(v1.RaftLeader, v1.RaftFollower, v1.RaftLearner), true},
	}
	for kind, objs := range fixtureOthers() {
		cases = append(cases, struct {
			name string
			kind string
			objs []v1.Object
			wide bool
		}{kind + ".txt", kind, objs, false})
	}
	// A cordoned and a not-ready node.
	nodes := fixtureNodes(v1.RaftLeader, "", "")
	nodes[1].(*v1.Node).Spec.Unschedulable = true
	nodes[2].(*v1.Node).Status.Conditions[0].Status = v1.ConditionFalse
	nodes[2].(*v1.Node).Spec.Drain = true
	cases = append(cases, struct {
		name string
		kind string
		objs []v1.Object
		wide bool
	}{"nodes-cordoned.txt", v1.KindNode, nodes, false})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := objectTable(tc.kind, tc.objs, tc.wide, now).write(&buf, false); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
			if bytes.Contains(buf.Bytes(), []byte("hunter2")) {
				t.Fatal("a secret value was printed")
			}
		})
	}
}

func TestRoutesGolden(t *testing.T) {
	rs := []client.Route{
		{EntryPoints: []string{"web"}, Rule: "Host(`hello.example.com`) && PathPrefix(`/`)", Service: "hello", Servers: []string{"10.0.0.1:32768", "10.0.0.2:32771"}},
		{EntryPoints: []string{"websecure"}, Rule: "Host(`api.example.com`) && PathPrefix(`/hello`)", Service: "hello", Protocol: "http", TLS: true, Servers: nil},
		{EntryPoints: []string{"web"}, Rule: "Host(`api.example.com`) && PathPrefix(`/hello`)", Service: "hello", Protocol: "http", Redirect: true},
		{EntryPoints: []string{"pg"}, Rule: "HostSNI(`*`)", Service: "db", Protocol: "tcp", TLS: true, Passthrough: true, Servers: []string{"10.0.0.3:32801"}},
		{EntryPoints: []string{"dns"}, Service: "dns", Protocol: "udp"},
	}
	var buf bytes.Buffer
	if err := routesTable(rs).write(&buf, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "routes.txt", buf.Bytes())
}

func TestDescribeGolden(t *testing.T) {
	svcs := fixtureServices()
	others := fixtureOthers()
	for _, tc := range []struct {
		name string
		obj  v1.Object
	}{
		{"describe-service.txt", svcs[3]},
		{"describe-node.txt", fixtureNodes(v1.RaftLeader)[0]},
		{"describe-dnsrecord.txt", others[v1.KindDNSRecord][0]},
		{"describe-lease.txt", others[v1.KindLease][0]},
		{"describe-replicaset.txt", others[v1.KindReplicaSet][0]},
		{"describe-secret.txt", others[v1.KindSecret][0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := describe(&buf, tc.obj, svcs, now); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
			if bytes.Contains(buf.Bytes(), []byte("hunter2")) {
				t.Fatal("a secret value was printed")
			}
		})
	}
}

func TestQuorumNote(t *testing.T) {
	for _, tc := range []struct {
		roles []v1.RaftRole
		want  string
	}{
		{nil, "0 voters: no node reports a raft role yet (an agent on the in-memory store has none)"},
		{[]v1.RaftRole{v1.RaftLeader}, "1 voter: this cluster cannot survive the loss of a node (quorum needs 3 voters)"},
		{[]v1.RaftRole{v1.RaftLeader, v1.RaftFollower, v1.RaftLearner}, "2 voters: this cluster cannot survive the loss of a node (quorum needs 3 voters)"},
		{[]v1.RaftRole{v1.RaftLeader, v1.RaftFollower, v1.RaftFollower}, "3 voters: survives the loss of 1"},
		{[]v1.RaftRole{v1.RaftLeader, v1.RaftFollower, v1.RaftFollower, v1.RaftFollower}, "4 voters: survives the loss of 1"},
		{[]v1.RaftRole{v1.RaftLeader, v1.RaftFollower, v1.RaftFollower, v1.RaftFollower, v1.RaftFollower}, "5 voters: survives the loss of 2"},
		{[]v1.RaftRole{v1.RaftNone, v1.RaftLearner}, "0 voters: no node reports a raft role yet (an agent on the in-memory store has none)"},
	} {
		if got := quorumNote(fixtureNodes(tc.roles...)); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.roles, got, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-500 * time.Millisecond, "0s"},
		{0, "0s"},
		{45 * time.Second, "45s"},
		{119 * time.Second, "119s"},
		{5*time.Minute + 30*time.Second, "5m30s"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "90m"},
		{3*time.Hour + 12*time.Minute, "3h12m"},
		{5 * time.Hour, "5h"},
		{26 * time.Hour, "26h"},
		{50 * time.Hour, "2d2h"},
		{9 * 24 * time.Hour, "9d"},
		{400 * 24 * time.Hour, "400d"},
		{3*365*24*time.Hour + 10*24*time.Hour, "3y10d"},
		{10 * 365 * 24 * time.Hour, "10y"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestPadRowMatchesTabwriter(t *testing.T) {
	tb := objectTable(v1.KindService, fixtureServices(), false, now)
	var buf bytes.Buffer
	if err := tb.write(&buf, false); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimRight(buf.Bytes(), "\n"), []byte("\n"))
	w := tb.widths()
	for i, r := range tb.rows {
		if got := padRow(r, w); got != string(lines[i+1]) {
			t.Errorf("row %d:\n%q\n%q", i, got, lines[i+1])
		}
	}
}

// TestDescribeShowsHostAccess: describe says whether a Service opts in to host access and what
// it uses; one using it without the opt-in is flagged.
func TestDescribeShowsHostAccess(t *testing.T) {
	svcs := fixtureServices()
	for _, tc := range []struct {
		svc  v1.Object
		want string
	}{
		{svcs[1], "opted in (spec.hostAccess), uses bind, privileged"},
		{svcs[2], "NOT opted in: nodes refuse its containers (set spec.hostAccess: true), uses bind"},
	} {
		var buf bytes.Buffer
		if err := describe(&buf, tc.svc, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "Host access:") || !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%s: describe lacks %q:\n%s", tc.svc.GetMetadata().Name, tc.want, buf.String())
		}
	}
}
