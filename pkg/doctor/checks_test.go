package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

type want struct {
	status nodeapi.CheckStatus
	msg    string // substring of the message
}

func expect(t *testing.T, name string, got nodeapi.Check, w want) {
	t.Helper()
	if got.Status != w.status || !strings.Contains(got.Message, w.msg) {
		t.Errorf("%s: got %s %q, want %s containing %q", name, got.Status, got.Message, w.status, w.msg)
	}
	if got.Status != OK && got.Hint == "" {
		t.Errorf("%s: %s without a hint", name, got.Status)
	}
	if got.Status == OK && got.Hint != "" {
		t.Errorf("%s: OK with a hint %q", name, got.Hint)
	}
}

func TestDocker(t *testing.T) {
	cases := []struct {
		name     string
		disabled bool
		version  string
		err      error
		want     want
	}{
		{"disabled", true, "", nil, want{OK, "disabled"}},
		{"unreachable", false, "", errors.New("connection refused"), want{Fail, "does not answer: connection refused"}},
		{"old API", false, "1.40", nil, want{Warn, "older than 1.41"}},
		{"no version", false, "", nil, want{Warn, "no API version"}},
		{"fine", false, "1.41", nil, want{OK, "API 1.41"}},
		{"newer", false, "1.52", nil, want{OK, "API 1.52"}},
	}
	for _, c := range cases {
		expect(t, c.name, Docker(c.disabled, "unix:///var/run/docker.sock", c.version, c.err), c.want)
	}
}

// TestDockerBadHost breaks Docker for real: a client pointed at a socket nobody serves.
func TestDockerBadHost(t *testing.T) {
	host := "unix://" + t.TempDir() + "/no-docker.sock"
	dc, err := docker.New(docker.Options{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	l := Local{Node: "n1", DockerHost: host, Docker: func(ctx context.Context) (string, error) {
		if err := dc.Ping(ctx); err != nil {
			return "", err
		}
		return dc.APIVersion(), nil
	}, Statfs: okStatfs}
	d := l.Run(context.Background())
	expect(t, "docker", find(t, d, "docker"), want{Fail, host})
}

func TestPortsClosedPortFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	defer ln.Close()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln2.Addr().String()
	ln2.Close()
	_, port, _ := net.SplitHostPort(open)
	l := Local{Ports: []Port{{Name: "api", Address: ":" + port}, {Name: "raft", Address: closed}, {Name: "gossip"}}, Statfs: okStatfs}
	d := l.Run(context.Background())
	expect(t, "api (unspecified host dialled on loopback)", find(t, d, "port api"), want{OK, "accepts connections"})
	expect(t, "raft", find(t, d, "port raft"), want{Fail, closed})
	expect(t, "gossip", find(t, d, "port gossip"), want{Warn, "no address"})
}

func TestDisk(t *testing.T) {
	cases := []struct {
		name string
		u    DiskUsage
		err  error
		want want
	}{
		{"plenty", DiskUsage{Total: 100 << 30, Free: 50 << 30}, nil, want{OK, "50.0 GiB free of 100.0 GiB (50%)"}},
		{"low fraction", DiskUsage{Total: 100 << 30, Free: 10 << 30}, nil, want{Warn, "(10%)"}},
		{"low bytes on a small disk", DiskUsage{Total: 4 << 30, Free: 900 << 20}, nil, want{Warn, "900.0 MiB"}},
		{"nearly full", DiskUsage{Total: 100 << 30, Free: 2 << 30}, nil, want{Fail, "(2%)"}},
		{"under 256 MiB", DiskUsage{Total: 1 << 30, Free: 200 << 20}, nil, want{Fail, "200.0 MiB"}},
		{"statfs error", DiskUsage{}, errors.New("no such file or directory"), want{Fail, "no such file"}},
		{"no size", DiskUsage{}, nil, want{Warn, "no size"}},
	}
	for _, c := range cases {
		expect(t, c.name, Disk("/var/lib/constellation", c.u, c.err), c.want)
	}
}

// TestDiskLowThroughLocal injects a statfs that reports a nearly full disk.
func TestDiskLowThroughLocal(t *testing.T) {
	var asked string
	l := Local{DataDir: "/data", Statfs: func(p string) (DiskUsage, error) {
		asked = p
		return DiskUsage{Total: 10 << 30, Free: 100 << 20}, nil
	}}
	d := l.Run(context.Background())
	if asked != "/data" {
		t.Errorf("statfs asked for %q, want the data dir", asked)
	}
	expect(t, "disk", find(t, d, "disk"), want{Fail, "100.0 MiB free"})
}

// TestStatfsReal: the real statfs measures the test's temp dir.
func TestStatfsReal(t *testing.T) {
	u, err := Statfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if u.Total == 0 || u.Free > u.Total {
		t.Fatalf("statfs: %+v", u)
	}
	if _, err := Statfs("/nonexistent/constellation"); err == nil {
		t.Error("statfs of a missing dir: no error")
	}
}

// shortCert makes a real certificate valid from notBefore to notAfter.
func shortCert(t *testing.T, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "n1"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertificates(t *testing.T) {
	year := 365 * 24 * time.Hour
	cases := []struct {
		name          string
		before, after time.Time
		renewed       bool
		want          want
	}{
		{"fresh node cert", t0.Add(-time.Hour), t0.Add(year), true, want{OK, "in 365 days"}},
		{"expires in an hour", t0.Add(-year), t0.Add(time.Hour), true, want{Fail, "in 1h0m0s"}},
		{"expired", t0.Add(-year), t0.Add(-2 * time.Hour), true, want{Fail, "expired"}},
		{"within a month", t0.Add(-year), t0.Add(20 * 24 * time.Hour), false, want{Warn, "in 20 days"}},
		{"renewal overdue", t0.Add(-300 * 24 * time.Hour), t0.Add(65 * 24 * time.Hour), true, want{Warn, "past its renewal point"}},
		{"CA not renewed, not overdue", t0.Add(-300 * 24 * time.Hour), t0.Add(65 * 24 * time.Hour), false, want{OK, "in 65 days"}},
		{"clock behind", t0.Add(time.Hour), t0.Add(year), true, want{Fail, "clock is behind"}},
	}
	for _, c := range cases {
		x := shortCert(t, c.before, c.after)
		got := Certificates(t0, []Cert{{Name: "node", NotBefore: x.NotBefore, NotAfter: x.NotAfter, Renewed: c.renewed}})
		if len(got) != 1 || got[0].Name != "certificate node" {
			t.Fatalf("%s: %+v", c.name, got)
		}
		expect(t, c.name, got[0], c.want)
	}
	if got := Certificates(t0, []Cert{{Name: "node"}}); got[0].Status != Fail {
		t.Errorf("no certificate: %+v", got[0])
	}
}

func TestTraefikPolls(t *testing.T) {
	fresh := []Poll{{Client: "127.0.0.1", Agent: "Traefik/3.6", Last: t0.Add(-3 * time.Second), Status: 200, Count: 10}}
	stale := []Poll{{Client: "127.0.0.1", Last: t0.Add(-5 * time.Minute), Status: 304}}
	erring := []Poll{{Client: "127.0.0.1", Last: t0.Add(-time.Second), Status: 401}}
	mixed := []Poll{stale[0], {Client: "10.0.0.9", Last: t0.Add(-2 * time.Second), Status: 304}}
	cases := []struct {
		name  string
		lb    bool
		polls []Poll
		want  want
	}{
		{"LB never polled", true, nil, want{Fail, "no Traefik has polled"}},
		{"LB stale", true, stale, want{Warn, "stale"}},
		{"LB fresh", true, fresh, want{OK, "last poll 3s ago from 127.0.0.1 (Traefik/3.6), answered 200"}},
		{"LB error answers", true, erring, want{Warn, "answered 401"}},
		{"newest poll counts", true, mixed, want{OK, "10.0.0.9"}},
		{"not an LB, never polled", false, nil, want{OK, "not a load balancer"}},
		{"not an LB, stale", false, stale, want{Warn, "stale"}},
	}
	for _, c := range cases {
		expect(t, c.name, TraefikPolls(t0, c.lb, 0, c.polls), c.want)
	}
}

func TestCloudflare(t *testing.T) {
	cases := []struct {
		name       string
		configured bool
		tokenErr   error
		zones      []Zone
		want       want
	}{
		{"not configured", false, nil, nil, want{OK, "not configured"}},
		{"token refused", true, errors.New("403 Invalid access token"), nil, want{Fail, "Invalid access token"}},
		{"no zones", true, nil, nil, want{Warn, "no zone"}},
		{"zone missing", true, nil, []Zone{{Name: "a.com"}, {Name: "b.com", Err: ErrZoneNotFound}}, want{Fail, "zones not found: b.com"}},
		{"zones found", true, nil, []Zone{{Name: "b.com"}, {Name: "a.com"}}, want{OK, "zones found: a.com, b.com"}},
	}
	for _, c := range cases {
		expect(t, c.name, Cloudflare(c.configured, c.tokenErr, c.zones), c.want)
	}
}

func TestMeshDNSRaftGossip(t *testing.T) {
	expect(t, "mesh disabled", MeshDNS(true, "", "", nil), want{OK, "disabled"})
	expect(t, "mesh down", MeshDNS(false, "10.213.0.1:53", "web.constellation.internal", errors.New("i/o timeout")), want{Fail, "i/o timeout"})
	expect(t, "mesh up", MeshDNS(false, "10.213.0.1:53", "web.constellation.internal", nil), want{OK, "answers"})

	expect(t, "raft memory", Raft("n1", nil), want{Warn, "in-memory"})
	expect(t, "raft no leader", Raft("n1", &nodeapi.RaftInfo{Role: "follower", Voters: []string{"n1", "n2", "n3"}}), want{Fail, "knows no leader"})
	expect(t, "raft not a member", Raft("n1", &nodeapi.RaftInfo{Role: "none"}), want{Fail, "not a raft member"})
	expect(t, "raft fine", Raft("n1", &nodeapi.RaftInfo{Role: "follower", Leader: "n2"}), want{OK, "leader n2"})

	g := nodeapi.GossipInfo{PrimaryKey: "abcd", Keys: 1, Alive: []string{"n1", "n2"}}
	expect(t, "gossip sees all", Gossip(g, []string{"n1", "n2"}), want{OK, "2 alive (key abcd)"})
	expect(t, "gossip misses one", Gossip(g, []string{"n1", "n2", "n3"}), want{Warn, "does not see n3"})
}

// TestLocalAllOK: with every input healthy, every check is OK and in a fixed order.
func TestLocalAllOK(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := Local{
		Node: "n1", Version: "v1", Clock: clocktesting.NewFakePassiveClock(t0),
		Docker: func(context.Context) (string, error) { return "1.41", nil },
		Ports:  []Port{{Name: "api", Address: ln.Addr().String()}},
		Statfs: okStatfs,
		Raft: func() *nodeapi.RaftInfo {
			return &nodeapi.RaftInfo{Role: "leader", Leader: "n1", Voters: []string{"n1"}}
		},
		Gossip: func() nodeapi.GossipInfo { return nodeapi.GossipInfo{Keys: 1, PrimaryKey: "k", Alive: []string{"n1"}} },
		Nodes:  func(context.Context) ([]string, error) { return []string{"n1"}, nil },
		LB:     true,
		Polls:  func() []Poll { return []Poll{{Client: "127.0.0.1", Last: t0.Add(-time.Second), Status: 200}} },
		Cloudflare: func(context.Context) ([]Zone, error) {
			return []Zone{{Name: "example.com"}}, nil
		},
		MeshDNS: func(context.Context) (string, string, error) { return "10.213.0.1:53", "x", nil },
		Certs: func() []Cert {
			return []Cert{{Name: "node", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour), Renewed: true}}
		},
	}
	d := l.Run(context.Background())
	var names []string
	for _, c := range d.Checks {
		names = append(names, c.Name)
		if c.Status != OK {
			t.Errorf("%s: %s %s", c.Name, c.Status, c.Message)
		}
	}
	wantNames := "docker,port api,disk,raft,gossip,traefik,cloudflare,mesh dns,certificate node"
	if got := strings.Join(names, ","); got != wantNames {
		t.Errorf("checks %s, want %s", got, wantNames)
	}
	if d.Node != "n1" || d.Version != "v1" || !d.Time.Equal(t0) || d.Raft == nil || d.Gossip.PrimaryKey != "k" {
		t.Errorf("diagnostics: %+v", d)
	}
	if Worst(d.Checks) != OK {
		t.Error("worst of all-OK is not OK")
	}
}

// TestLocalProbeTimeout: a probe that hangs is cut off by Timeout and reported.
func TestLocalProbeTimeout(t *testing.T) {
	l := Local{Timeout: 50 * time.Millisecond, Statfs: okStatfs,
		Docker: func(ctx context.Context) (string, error) { <-ctx.Done(); return "", fmt.Errorf("ping: %w", ctx.Err()) }}
	d := l.Run(context.Background())
	expect(t, "hung docker", find(t, d, "docker"), want{Fail, "deadline exceeded"})
}

func okStatfs(string) (DiskUsage, error) { return DiskUsage{Total: 100 << 30, Free: 60 << 30}, nil }

func find(t *testing.T, d nodeapi.Diagnostics, name string) nodeapi.Check {
	t.Helper()
	for _, c := range d.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, d.Checks)
	return nodeapi.Check{}
}
