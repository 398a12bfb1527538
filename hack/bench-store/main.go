// Command bench-store compares the write path of Constellation's replicated store with etcd's,
// side by side on this machine: a 3-member raftstore cluster and a 3-member etcd cluster
// (Debian's etcd-server, installed with apt-get when missing), both on loopback, both written
// through HTTP/JSON on the leader (raftstore behind a minimal PUT handler, etcd through its
// gRPC gateway /v3/kv/put), so both pay for a client protocol.
//
// Workloads: sequential writes from one client, then writes from 64 concurrent clients;
// 256-byte values. It prints writes/s, p50 and p99 latency for each and the ratios.
//
//	go run ./hack/bench-store [-n 2000] [-concurrent-n 20000] [-clients 64]
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
)

func main() {
	seqN := flag.Int("n", 2000, "sequential writes")
	concN := flag.Int("concurrent-n", 20000, "writes in the concurrent workload")
	clients := flag.Int("clients", 64, "concurrent clients")
	valueSize := flag.Int("value-size", 256, "value bytes")
	keys := flag.Int("keys", 1000, "distinct keys written")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the Constellation members) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-store:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*seqN, *concN, *clients, *valueSize, *keys); err != nil {
		fmt.Fprintln(os.Stderr, "bench-store:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type result struct {
	name    string
	n       int
	elapsed time.Duration
	lat     []time.Duration
	disk    diskCounts
}

// diskCounts are a system's disk syncs so far, from its metrics.
type diskCounts struct {
	fdatasyncs    float64 // all members: WAL fsyncs + 2 per bbolt commit
	leaderCommits float64 // the leader's WAL fsyncs
}

func (c diskCounts) sub(o diskCounts) diskCounts {
	return diskCounts{c.fdatasyncs - o.fdatasyncs, c.leaderCommits - o.leaderCommits}
}

// promCount is the sample count of the histogram named in reg.
func promCount(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n float64
			for _, m := range mf.GetMetric() {
				n += float64(m.GetHistogram().GetSampleCount())
			}
			return n
		}
	}
	return 0
}

// scrape reads the unlabelled samples of a Prometheus text endpoint.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		var name string
		var v float64
		if strings.HasPrefix(line, "#") {
			continue
		}
		if n, _ := fmt.Sscanf(line, "%s %g", &name, &v); n == 2 {
			out[name] = v
		}
	}
	return out
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }
func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
}

// writer writes value under key i; each system provides one.
type writer func(ctx context.Context, client *http.Client, i int) error

func bench(name string, w writer, n, clients int) (result, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2, MaxConnsPerHost: clients * 2}, Timeout: 30 * time.Second}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := w(context.Background(), client, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	slices.Sort(lat)
	return result{name: name, n: n, elapsed: elapsed, lat: lat}, nil
}

func run(seqN, concN, clients, valueSize, keys int) error {
	dir, err := os.MkdirTemp("", "bench-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	value := strings.Repeat("x", valueSize)

	// Constellation: three members in this process, each with its own bbolt file.
	cw, cCounts, stopC, err := startConstellation(filepath.Join(dir, "constellation"), value, keys)
	if err != nil {
		return err
	}
	// etcd: three processes.
	ew, eCounts, stopE, err := startEtcd(filepath.Join(dir, "etcd"), value, keys)
	if err != nil {
		stopC()
		return err
	}
	defer stopE()
	defer stopC()

	// Every key exists before measuring, so each write is one update on both systems.
	if _, err := bench("populate", cw, keys, 64); err != nil {
		return err
	}
	if _, err := bench("populate", ew, keys, 64); err != nil {
		return err
	}
	var rows [][2]result
	for _, wl := range []struct {
		name    string
		n       int
		clients int
	}{{"sequential (1 client)", seqN, 1}, {fmt.Sprintf("concurrent (%d clients)", clients), concN, clients}} {
		// Warm up both (connections, leader caches), then measure.
		if _, err := bench("warmup", cw, 200, wl.clients); err != nil {
			return err
		}
		if _, err := bench("warmup", ew, 200, wl.clients); err != nil {
			return err
		}
		c0 := cCounts()
		c, err := bench("constellation", cw, wl.n, wl.clients)
		if err != nil {
			return err
		}
		c.disk = cCounts().sub(c0)
		e0 := eCounts()
		e, err := bench("etcd", ew, wl.n, wl.clients)
		if err != nil {
			return err
		}
		e.disk = eCounts().sub(e0)
		c.name, e.name = wl.name, wl.name
		rows = append(rows, [2]result{c, e})
	}
	fmt.Printf("\n3 members each on loopback, %d-byte values, %d keys, %d CPUs\n", valueSize, keys, numCPU())
	fmt.Printf("%-24s %-14s %10s %10s %10s %12s %12s\n", "workload", "system", "writes/s", "p50", "p99", "fsyncs/write", "writes/lsync")
	for _, r := range rows {
		for i, sys := range []string{"constellation", "etcd " + etcdVersion()} {
			x := r[i]
			fmt.Printf("%-24s %-14s %10.0f %10s %10s %12.2f %12.1f\n", x.name, sys, x.rate(), x.pct(0.50).Round(time.Microsecond), x.pct(0.99).Round(time.Microsecond),
				x.disk.fdatasyncs/float64(x.n), float64(x.n)/max(x.disk.leaderCommits, 1))
		}
		fmt.Printf("%-24s %-14s %9.2fx %9.2fx %9.2fx\n", r[0].name, "ratio c/etcd", r[0].rate()/r[1].rate(),
			float64(r[0].pct(0.5))/float64(r[1].pct(0.5)), float64(r[0].pct(0.99))/float64(r[1].pct(0.99)))
	}
	fmt.Println("(throughput ratio above 1 and latency ratios below 1 favour Constellation)")
	fmt.Println("fsyncs/write: fdatasyncs of all three members per write (a WAL sync is one, a bbolt commit two);")
	fmt.Println("writes/lsync: writes per WAL fdatasync of the leader (its commits)")
	return nil
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startConstellation(dir, value string, keys int) (writer, func() diskCounts, func(), error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var stores []*raftstore.Store
	var regs []*prometheus.Registry
	var servers []*http.Server
	stop := func() {
		for _, s := range servers {
			_ = s.Close()
		}
		for _, s := range stores {
			_ = s.Close()
		}
	}
	var apiURLs []string
	for i := range 3 {
		raftAddr, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		apiAddr, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		cfg := raftstore.DefaultConfig()
		cfg.NodeName = fmt.Sprintf("c%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.NodeName)
		cfg.RaftAddress = raftAddr
		cfg.ClusterToken = "bench"
		cfg.PromoteInterval = 100 * time.Millisecond
		if i > 0 {
			cfg.Join = apiURLs[:1]
		}
		// The join handler must be served before the next member joins.
		ln, err := net.Listen("tcp", apiAddr)
		if err != nil {
			return nil, nil, stop, err
		}
		var s *raftstore.Store
		var mu sync.Mutex
		mux := http.NewServeMux()
		mux.HandleFunc("POST /cluster/join", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			st := s
			mu.Unlock()
			st.JoinHandler().ServeHTTP(w, r)
		})
		mux.HandleFunc("PUT /put/{name}", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			st := s
			mu.Unlock()
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			if err := putObject(r.Context(), st, r.PathValue("name"), string(body)); err != nil {
				http.Error(w, err.Error(), 503)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		srv := &http.Server{Handler: mux}
		servers = append(servers, srv)
		mu.Lock()
		go func() { _ = srv.Serve(ln) }()
		reg := prometheus.NewRegistry()
		regs = append(regs, reg)
		s, err = raftstore.Open(cfg, logger, reg)
		mu.Unlock()
		if err != nil {
			return nil, nil, stop, err
		}
		stores = append(stores, s)
		apiURLs = append(apiURLs, "http://"+apiAddr)
	}
	// Wait for three voters and a leader.
	deadline := time.Now().Add(60 * time.Second)
	lead := -1
	for time.Now().Before(deadline) && lead < 0 {
		voters := 0
		for _, m := range stores[0].Members() {
			if m.Role == v1.RaftLeader || m.Role == v1.RaftFollower {
				voters++
			}
		}
		if voters == 3 {
			for i, s := range stores {
				if s.Role() == v1.RaftLeader {
					lead = i
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lead < 0 {
		return nil, nil, stop, errors.New("constellation cluster did not form")
	}
	url := apiURLs[lead] + "/put/"
	w := func(ctx context.Context, client *http.Client, i int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%sk%d", url, i%keys), strings.NewReader(value))
		return doOK(client, req, "put")
	}
	counts := func() diskCounts {
		var c diskCounts
		for i, reg := range regs {
			syncs := promCount(reg, "constellation_store_wal_fsync_seconds")
			commits := promCount(reg, "constellation_store_bolt_commit_seconds")
			c.fdatasyncs += syncs + 2*commits // a bbolt commit is two fdatasyncs
			if i == lead {
				c.leaderCommits = syncs
			}
		}
		return c
	}
	return w, counts, stop, nil
}

// putObject writes a Secret holding the value: an update, or a create the first time.
func putObject(ctx context.Context, s *raftstore.Store, name, value string) error {
	obj := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
	obj.Metadata.Name = name
	obj.Spec.Data = map[string]string{"value": value}
	_, err := s.Update(ctx, obj)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.Create(ctx, obj)
		if errors.Is(err, store.ErrAlreadyExists) {
			_, err = s.Update(ctx, obj)
		}
	}
	return err
}

var etcdVer string

func etcdVersion() string { return etcdVer }

func startEtcd(dir, value string, keys int) (writer, func() diskCounts, func(), error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd not found: installing etcd-server with apt-get")
		cmd := exec.Command("apt-get", "install", "-y", "etcd-server")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, nil, func() {}, fmt.Errorf("install etcd-server: %w", err)
		}
		if bin, err = exec.LookPath("etcd"); err != nil {
			return nil, nil, func() {}, err
		}
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		if f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0]); len(f) > 0 {
			etcdVer = f[len(f)-1]
		}
	}
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_, _ = p.Process.Wait()
		}
	}
	var peers, clients []string
	var cluster []string
	for i := range 3 {
		p, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		c, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		peers, clients = append(peers, "http://"+p), append(clients, "http://"+c)
		cluster = append(cluster, fmt.Sprintf("e%d=http://%s", i, p))
	}
	for i := range 3 {
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("e%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i)),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "bench", "--log-level", "error")
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("e%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, stop, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, stop, fmt.Errorf("start etcd: %w", err)
		}
		procs = append(procs, cmd)
	}
	// Find the leader through the maintenance status of each member.
	deadline := time.Now().Add(60 * time.Second)
	leader := ""
	for time.Now().Before(deadline) && leader == "" {
		for _, c := range clients {
			resp, err := http.Post(c+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
			if err != nil {
				continue
			}
			var st struct {
				Header struct {
					MemberID string `json:"member_id"`
				} `json:"header"`
				Leader string `json:"leader"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID {
				leader = c
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if leader == "" {
		return nil, nil, stop, errors.New("etcd cluster did not elect a leader")
	}
	url := leader + "/v3/kv/put"
	w := func(ctx context.Context, client *http.Client, i int) error {
		body, _ := json.Marshal(map[string]string{
			"key":   base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "k%d", i%keys)),
			"value": base64.StdEncoding.EncodeToString([]byte(value)),
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return doOK(client, req, "etcd put")
	}
	counts := func() diskCounts {
		var c diskCounts
		for _, cl := range clients {
			m := scrape(cl + "/metrics")
			syncs := m["etcd_disk_wal_fsync_duration_seconds_count"]
			c.fdatasyncs += syncs + 2*m["etcd_disk_backend_commit_duration_seconds_count"]
			if cl == leader {
				c.leaderCommits = syncs
			}
		}
		return c
	}
	return w, counts, stop, nil
}

// doOK sends req and wants 200 OK; anything else is an error naming what.
func doOK(client *http.Client, req *http.Request, what string) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", what, resp.Status, b)
	}
	return nil
}
