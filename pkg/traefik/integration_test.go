package traefik

// Integration tests against a real Traefik v3 binary (hack/traefik.sh builds and caches it).
// They fail, rather than skip, when the binary is missing, unless CONSTELLATION_NO_TRAEFIK=1.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

const traefikPoll = time.Second

// traefikBinary finds bin/traefik, building it with hack/traefik.sh when missing.
func traefikBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("CONSTELLATION_NO_TRAEFIK") == "1" {
		t.Skip("CONSTELLATION_NO_TRAEFIK=1: real-Traefik tests explicitly disabled")
	}
	if p := os.Getenv("CONSTELLATION_TRAEFIK"); p != "" {
		return p
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "traefik")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("%s missing; running hack/traefik.sh (the first build takes minutes)", bin)
	out, err := exec.Command(filepath.Join(root, "hack", "traefik.sh")).Output()
	if err != nil {
		t.Fatalf("no Traefik binary at %s and hack/traefik.sh failed: %v\n(set CONSTELLATION_NO_TRAEFIK=1 to skip the real-Traefik tests on purpose)", bin, err)
	}
	return strings.TrimSpace(string(out))
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// lockedBuffer collects Traefik's log for failure reports.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type traefikProc struct {
	api, web, sni, plain, udp string // 127.0.0.1:port of the API and each entry point
	log                       *lockedBuffer
}

func startTraefik(t *testing.T, providerURL string) *traefikProc {
	t.Helper()
	bin := traefikBinary(t)
	tp := &traefikProc{
		api:   fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		web:   fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		sni:   fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		plain: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		udp:   fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)),
		log:   &lockedBuffer{},
	}
	cmd := exec.Command(bin,
		"--global.checkNewVersion=false",
		"--global.sendAnonymousUsage=false",
		"--log.level=DEBUG",
		"--api.insecure=true",
		"--entryPoints.traefik.address="+tp.api,
		"--entryPoints.web.address="+tp.web,
		"--entryPoints.sni.address="+tp.sni,
		"--entryPoints.plain.address="+tp.plain,
		"--entryPoints.dgram.address="+tp.udp+"/udp",
		"--providers.http.endpoint="+providerURL,
		"--providers.http.pollInterval="+traefikPoll.String(),
	)
	cmd.Stdout, cmd.Stderr = tp.log, tp.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("traefik log:\n%s", tp.log.String())
		}
	})
	return tp
}

// eventually polls cond every 50ms until it returns nil or d passes, and returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
	return 0
}

// backend is a stand-in for one container replica.
type backend struct {
	addr string
	stop func()
}

func httpBackend(t *testing.T, id string) backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s %s", id, r.Host, r.URL.Path, r.Header.Get("X-Constellation"))
	}))
	t.Cleanup(srv.Close)
	return backend{addr: srv.Listener.Addr().String(), stop: srv.Close}
}

func selfSignedTLS(t *testing.T, host string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// tcpBackend greets every connection with "id\n"; with tlsConf it speaks TLS first.
func tcpBackend(t *testing.T, id string, tlsConf *tls.Config) backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "%s\n", id)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return backend{addr: l.Addr().String(), stop: func() { l.Close() }}
}

func udpBackend(t *testing.T, id string) backend {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo([]byte(id+":"+string(buf[:n])), from)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return backend{addr: c.LocalAddr().String(), stop: func() { c.Close() }}
}

func svc(name string, ports []v1.ServicePort, routes v1.Routes) *v1.Service {
	return &v1.Service{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: name},
		Spec:     v1.ServiceSpec{Image: "test/" + name + ":1", Ports: ports, Routes: &routes},
	}
}

func running(service string, index int32, ports map[string]string) observed.Replica {
	return observed.Replica{Service: service, Index: index, Node: "n1", State: v1.ReplicaRunning, Health: v1.HealthHealthy, Ports: ports}
}

type apiRouter struct {
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	Rule        string   `json:"rule"`
	Service     string   `json:"service"`
	EntryPoints []string `json:"entryPoints"`
	Error       []string `json:"error"`
}

func apiGet(addr, path string, v any) error {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// routers returns what Traefik loaded for one protocol, by name, and fails on any router or
// service Traefik did not enable: nothing Constellation renders may be rejected.
func routers(addr, proto string) (map[string]apiRouter, error) {
	var list []apiRouter
	if err := apiGet(addr, "/api/"+proto+"/routers", &list); err != nil {
		return nil, err
	}
	out := map[string]apiRouter{}
	for _, r := range list {
		if r.Status != "enabled" {
			return nil, fmt.Errorf("traefik %s router %s is %s: %v", proto, r.Name, r.Status, r.Error)
		}
		out[r.Name] = r
	}
	var svcs []struct {
		Name   string   `json:"name"`
		Status string   `json:"status"`
		Error  []string `json:"error"`
	}
	if err := apiGet(addr, "/api/"+proto+"/services", &svcs); err != nil {
		return nil, err
	}
	for _, s := range svcs {
		if s.Status != "enabled" {
			return nil, fmt.Errorf("traefik %s service %s is %s: %v", proto, s.Name, s.Status, s.Error)
		}
	}
	return out, nil
}

var noRedirect = &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(addr, host, path string, user, pass string) (int, string, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Host = host
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

func shaHash(pass string) string {
	sum := sha1.Sum([]byte(pass))
	return "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestRealTraefik(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	web0, web1 := httpBackend(t, "web-0"), httpBackend(t, "web-1")
	api0 := httpBackend(t, "api-0")
	wild0 := httpBackend(t, "wild-0")
	db0 := tcpBackend(t, "db-0", selfSignedTLS(t, "db.test"))
	raw0 := tcpBackend(t, "raw-0", nil)
	dns0 := udpBackend(t, "dns-0")

	st := store.NewMemory()
	http1 := []v1.ServicePort{{Name: "http", ContainerPort: 8080}}
	objs := []v1.Object{
		svc("web", http1, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test", EntryPoints: []string{"web"},
			Middlewares: &v1.HTTPMiddlewares{Headers: map[string]string{"X-Constellation": "yes"}}}}}),
		svc("api", http1, v1.Routes{HTTP: []v1.HTTPRoute{
			{Host: "web.test", PathPrefix: "/api", EntryPoints: []string{"web"}, Middlewares: &v1.HTTPMiddlewares{StripPrefix: true}},
			{Host: "admin.test", EntryPoints: []string{"web"}, Middlewares: &v1.HTTPMiddlewares{BasicAuthSecret: "admins"}},
			{Host: "locked.test", EntryPoints: []string{"web"}, Middlewares: &v1.HTTPMiddlewares{BasicAuthSecret: "missing"}},
			{Host: "secure.test", EntryPoints: []string{"web"}, TLS: &v1.RouteTLS{}, Middlewares: &v1.HTTPMiddlewares{RedirectToHTTPS: true}},
		}}),
		svc("wild", http1, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "*.wild.test", EntryPoints: []string{"web"}, Sticky: true, HealthCheckPath: "/"}}}),
		svc("db", []v1.ServicePort{{ContainerPort: 5432}}, v1.Routes{TCP: []v1.TCPRoute{{HostSNI: "db.test", EntryPoint: "sni", Passthrough: true}}}),
		svc("raw", []v1.ServicePort{{ContainerPort: 6379}}, v1.Routes{TCP: []v1.TCPRoute{{HostSNI: "*", EntryPoint: "plain"}}}),
		svc("dns", []v1.ServicePort{{ContainerPort: 53, Protocol: v1.ProtocolUDP}}, v1.Routes{UDP: []v1.UDPRoute{{EntryPoint: "dgram"}}}),
		// An entry point this Traefik does not define: left out, not handed to Traefik to disable.
		svc("ghost", http1, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "ghost.test", EntryPoints: []string{"websecure"}}}}),
		&v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: "admins"},
			Spec: v1.SecretSpec{Data: v1.SecretData{"alice": shaHash("wonderland")}}},
	}
	for _, o := range objs {
		o.Default()
		if _, err := st.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetMetadata().Name, err)
		}
	}

	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "n1", Advertise: "127.0.0.1", Alive: true, State: "alive"})
	var tcpUDPDown bool // db and dns scaled to zero too
	replicas := func(webReplicas ...observed.Replica) {
		rs := []observed.Replica{
			running("api", 0, map[string]string{"8080/tcp": api0.addr}),
			running("wild", 0, map[string]string{"8080/tcp": wild0.addr}),
			running("raw", 0, map[string]string{"6379/tcp": raw0.addr}),
		}
		if !tcpUDPDown {
			rs = append(rs,
				running("db", 0, map[string]string{"5432/tcp": db0.addr}),
				running("dns", 0, map[string]string{"53/udp": dns0.addr}))
		}
		view.SetNodeReplicas("n1", append(rs, webReplicas...))
	}
	web0r := running("web", 0, map[string]string{"8080/tcp": web0.addr})
	web1r := running("web", 1, map[string]string{"8080/tcp": web1.addr})
	replicas(web0r, web1r)

	p, err := NewProvider(ProviderConfig{Store: st, View: view, Registerer: prometheus.NewRegistry(), Debounce: 10 * time.Millisecond,
		EntryPoints: []string{"web", "sni", "plain", "dgram"},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle(ProviderPath, p)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tr := startTraefik(t, srv.URL+ProviderPath)

	// What Traefik loaded, through its own API.
	eventually(t, 30*time.Second, "traefik loads every router", func() error {
		want := map[string][]string{
			"http": {"web-http-0@http", "api-http-0@http", "api-http-1@http", "api-http-2@http", "api-http-3@http", "api-http-3-redirect@http", "wild-http-0@http"},
			"tcp":  {"db-tcp-0@http", "raw-tcp-0@http"},
			"udp":  {"dns-udp-0@http"},
		}
		for proto, names := range want {
			got, err := routers(tr.api, proto)
			if err != nil {
				return err
			}
			for _, n := range names {
				if _, ok := got[n]; !ok {
					return fmt.Errorf("%s router %s not loaded (have %d)", proto, n, len(got))
				}
			}
		}
		return nil
	})
	hr, err := routers(tr.api, "http")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := hr["ghost-http-0@http"]; ok {
		t.Error("route on an undefined entry point was handed to traefik")
	}
	if probs := p.Problems(); len(probs) != 2 || probs[1].Service != "ghost" {
		t.Errorf("problems = %v, want api's missing secret and ghost's entry point", probs)
	}
	if r := hr["api-http-0@http"]; r.Rule != "Host(`web.test`) && PathPrefix(`/api`)" || r.Service != "api-http-0" {
		t.Errorf("api-http-0 as loaded by traefik: %+v", r)
	}

	t.Run("HTTPByHostAndPath", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 20; i++ {
			code, body, _, err := get(tr.web, "web.test", "/hello", "", "")
			if err != nil || code != 200 {
				t.Fatalf("GET web.test/hello: %d %q %v", code, body, err)
			}
			id, rest, _ := strings.Cut(body, " ")
			if rest != "web.test /hello yes" {
				t.Fatalf("web backend saw %q, want host, path and the headers middleware's X-Constellation", rest)
			}
			seen[id] = true
		}
		if !seen["web-0"] || !seen["web-1"] {
			t.Errorf("requests reached %v, want both web replicas", seen)
		}
		code, body, _, err := get(tr.web, "web.test", "/api/users", "", "")
		if err != nil || code != 200 || body != "api-0 web.test /users " {
			t.Errorf("GET web.test/api/users = %d %q %v, want api-0 with the prefix stripped", code, body, err)
		}
		code, body, hdr, err := get(tr.web, "x.wild.test", "/", "", "")
		if err != nil || code != 200 || !strings.HasPrefix(body, "wild-0 x.wild.test") {
			t.Errorf("GET x.wild.test = %d %q %v, want wild-0", code, body, err)
		}
		if c := hdr.Get("Set-Cookie"); !strings.HasPrefix(c, "constellation_wild_http_0=") || !strings.Contains(c, "HttpOnly") {
			t.Errorf("sticky route set cookie %q, want constellation_wild_http_0 HttpOnly", c)
		}
		if code, _, _, _ := get(tr.web, "a.b.wild.test", "/", "", ""); code != 404 {
			t.Errorf("GET a.b.wild.test = %d, want 404 (a wildcard covers one label)", code)
		}
		if code, _, _, _ := get(tr.web, "nobody.test", "/", "", ""); code != 404 {
			t.Errorf("GET nobody.test = %d, want 404", code)
		}
	})

	// Between a node's death and gossip noticing it, its servers are still in the config. The
	// failover transport and the default retry send those requests to a live server instead.
	t.Run("DeadServerIsRetriedOnALiveOne", func(t *testing.T) {
		dead := "127.0.0.1:" + strconv.Itoa(freeTCPPort(t)) // nothing listens there
		replicas(web0r, running("web", 1, map[string]string{"8080/tcp": dead}))
		defer replicas(web0r, web1r)
		eventually(t, 15*time.Second, "traefik loads the dead server", func() error {
			var svc struct {
				LoadBalancer struct{ Servers []struct{ URL string } }
			}
			if err := apiGet(tr.api, "/api/http/services/web-http-0@http", &svc); err != nil {
				return err
			}
			for _, s := range svc.LoadBalancer.Servers {
				if s.URL == "http://"+dead {
					return nil
				}
			}
			return fmt.Errorf("servers %v", svc.LoadBalancer.Servers)
		})
		for i := 0; i < 20; i++ {
			code, body, _, err := get(tr.web, "web.test", "/", "", "")
			if err != nil || code != 200 || !strings.HasPrefix(body, "web-0 ") {
				t.Fatalf("request %d with one dead server: %d %q %v, want web-0 through the retry", i, code, body, err)
			}
		}
	})

	t.Run("Middlewares", func(t *testing.T) {
		if code, _, _, _ := get(tr.web, "admin.test", "/", "", ""); code != 401 {
			t.Errorf("admin.test without credentials = %d, want 401", code)
		}
		if code, _, _, _ := get(tr.web, "admin.test", "/", "alice", "wrong"); code != 401 {
			t.Errorf("admin.test with a wrong password = %d, want 401", code)
		}
		if code, body, _, _ := get(tr.web, "admin.test", "/", "alice", "wonderland"); code != 200 || !strings.HasPrefix(body, "api-0") {
			t.Errorf("admin.test with alice's password = %d %q, want 200 from api-0", code, body)
		}
		// The Secret is missing: the route stays, locked.
		for _, pw := range []string{"", "!", "{SHA}!"} {
			if code, _, _, _ := get(tr.web, "locked.test", "/", "constellation-locked", pw); code != 401 {
				t.Errorf("locked.test with password %q = %d, want 401", pw, code)
			}
		}
		code, _, hdr, err := get(tr.web, "secure.test", "/x", "", "")
		if err != nil || (code != 301 && code != 308) || !strings.HasPrefix(hdr.Get("Location"), "https://secure.test") {
			t.Errorf("plain GET secure.test = %d Location %q %v, want a permanent redirect to https", code, hdr.Get("Location"), err)
		}
	})

	t.Run("TCPHostSNIPassthrough", func(t *testing.T) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", tr.sni, &tls.Config{ServerName: "db.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS to db.test through traefik: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || line != "db-0\n" {
			t.Fatalf("read %q %v, want db-0", line, err)
		}
		// Passthrough: the certificate is the backend's own, not Traefik's default.
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "db.test" {
			t.Errorf("peer certificate CN %q, want the backend's db.test", cn)
		}
		if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", tr.sni, &tls.Config{ServerName: "other.test", InsecureSkipVerify: true}); err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line == "db-0\n" {
				t.Errorf("SNI other.test reached db-0")
			}
		}
	})

	t.Run("TCPAnySNI", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", tr.plain, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || line != "raw-0\n" {
			t.Fatalf("read %q %v, want raw-0", line, err)
		}
	})

	t.Run("UDP", func(t *testing.T) {
		conn, err := net.Dial("udp", tr.udp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		buf := make([]byte, 100)
		var got string
		for i := 0; i < 5 && got == ""; i++ { // UDP may drop; retry a few datagrams
			_, _ = conn.Write([]byte("ping"))
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := conn.Read(buf); err == nil {
				got = string(buf[:n])
			}
		}
		if got != "dns-0:ping" {
			t.Fatalf("UDP answer %q, want dns-0:ping", got)
		}
	})

	t.Run("UnhealthyReplicaLeavesWithinOnePoll", func(t *testing.T) {
		bad := web1r
		bad.Health = v1.HealthUnhealthy
		replicas(web0r, bad)
		took := eventually(t, traefikPoll+3*time.Second, "web-1 stops receiving requests", func() error {
			for i := 0; i < 10; i++ {
				_, body, _, err := get(tr.web, "web.test", "/", "", "")
				if err != nil {
					return err
				}
				if !strings.HasPrefix(body, "web-0 ") {
					return fmt.Errorf("request reached %q", body)
				}
			}
			return nil
		})
		t.Logf("unhealthy replica out of rotation after %s (traefik pollInterval %s)", took.Round(time.Millisecond), traefikPoll)
	})

	t.Run("ScaledToZeroAnswers503", func(t *testing.T) {
		replicas() // no web replica at all
		eventually(t, traefikPoll+3*time.Second, "web.test answers 503", func() error {
			code, body, _, err := get(tr.web, "web.test", "/", "", "")
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable {
				return fmt.Errorf("got %d %q", code, body)
			}
			return nil
		})
		got, err := routers(tr.api, "http")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got["web-http-0@http"]; !ok {
			t.Fatal("web-http-0 router gone from traefik; want it kept (503, not 404)")
		}
		// And back.
		replicas(web0r)
		eventually(t, traefikPoll+3*time.Second, "web.test answers again", func() error {
			code, body, _, err := get(tr.web, "web.test", "/", "", "")
			if err != nil || code != 200 {
				return fmt.Errorf("got %d %q %v", code, body, err)
			}
			return nil
		})
	})

	// Empty TCP and UDP server lists must not make Traefik reject the whole configuration (an
	// empty loadBalancer object does: "loadBalancer cannot be a standalone element").
	t.Run("TCPAndUDPScaledToZero", func(t *testing.T) {
		tcpUDPDown = true
		replicas() // web down too
		eventually(t, traefikPoll+3*time.Second, "web.test answers 503 with tcp and udp scaled to zero", func() error {
			code, body, _, err := get(tr.web, "web.test", "/", "", "")
			if err != nil || code != http.StatusServiceUnavailable {
				return fmt.Errorf("got %d %q %v", code, body, err)
			}
			return nil
		})
		for _, proto := range []string{"http", "tcp", "udp"} {
			if _, err := routers(tr.api, proto); err != nil {
				t.Fatal(err)
			}
		}
		if conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", tr.sni, &tls.Config{ServerName: "db.test", InsecureSkipVerify: true}); err == nil {
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if line != "" {
				t.Errorf("db.test scaled to zero still answered %q", line)
			}
		}
		tcpUDPDown = false
		replicas(web0r)
		eventually(t, traefikPoll+3*time.Second, "web.test answers again", func() error {
			code, body, _, err := get(tr.web, "web.test", "/", "", "")
			if err != nil || code != 200 {
				return fmt.Errorf("got %d %q %v", code, body, err)
			}
			return nil
		})
	})

	t.Run("ServiceDeletedRouterRemoved", func(t *testing.T) {
		if _, err := st.Delete(ctx, v1.KindService, "raw", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, traefikPoll+3*time.Second, "raw-tcp-0 removed from traefik", func() error {
			got, err := routers(tr.api, "tcp")
			if err != nil {
				return err
			}
			if _, ok := got["raw-tcp-0@http"]; ok {
				return fmt.Errorf("still there")
			}
			return nil
		})
	})

	if err := p.Ready(); err != nil {
		t.Errorf("provider not ready at the end: %v", err)
	}
}
