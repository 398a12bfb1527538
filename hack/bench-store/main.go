// Command bench-store compares the write path of Constellation's replicated store with etcd's,
// side by side on this machine: a 3-member raftstore cluster and a 3-member etcd cluster
// (Debian's etcd-server, installed with apt-get when missing), both on loopback, both written
// through HTTP/JSON on the leader (raftstore behind a minimal PUT handler, etcd through its
// gRPC gateway /v3/kv/put), so both pay for a client protocol.
//
// Workloads: sequential writes from one client, then writes from 64 concurrent clients;
// 256-byte values, a fresh one for every write. It prints writes/s, p50 and p99 latency for each and the ratios.
//
//	go run ./hack/bench-store [-n 2000] [-concurrent-n 20000] [-clients 64] [-cpuprofile FILE] [-trace FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func main() {
	seqN := flag.Int("n", 2000, "sequential writes")
	concN := flag.Int("concurrent-n", 20000, "writes in the concurrent workload")
	clients := flag.Int("clients", 64, "concurrent clients")
	valueSize := flag.Int("value-size", 256, "value bytes")
	keys := flag.Int("keys", 1000, "distinct keys written")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the Constellation members) to this file")
	traceFile := flag.String("trace", "", "write an execution trace of this process to this file (go tool trace)")
	flag.Parse()
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-store:", err)
			os.Exit(1)
		}
		_ = trace.Start(f)
		defer trace.Stop()
	}
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
		trace.Stop()
		os.Exit(1)
	}
}

type result struct {
	name    string
	n       int
	elapsed time.Duration
	lat     []time.Duration
	disk    diskCounts
	proc    string     // what this process used meanwhile (Constellation only)
	sched   schedTimes // the system's processes meanwhile (Constellation's includes the clients)
}

// diskCounts are a system's disk syncs so far, from its metrics.
type diskCounts struct {
	fdatasyncs    float64 // all members: WAL fsyncs + 2 per bbolt commit
	leaderCommits float64 // the leader's WAL fsyncs
	boltCommits   float64 // the leader's bbolt commits (Constellation only)
	boltSeconds   float64 // the time they took
	syncSeconds   float64 // the time the leader's WAL fdatasyncs took
}

func (c diskCounts) sub(o diskCounts) diskCounts {
	return diskCounts{c.fdatasyncs - o.fdatasyncs, c.leaderCommits - o.leaderCommits, c.boltCommits - o.boltCommits, c.boltSeconds - o.boltSeconds, c.syncSeconds - o.syncSeconds}
}

// promCount is the sample count of the histogram named in reg.
func promCount(reg *prometheus.Registry, name string) float64 {
	n, _ := promHist(reg, name)
	return n
}

// promHist is the sample count and sum of the histogram named in reg.
func promHist(reg *prometheus.Registry, name string) (count, sum float64) {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				count += float64(m.GetHistogram().GetSampleCount())
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return count, sum
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

// meanDur is sum seconds over n, as a duration.
func meanDur(sum, n float64) time.Duration {
	return time.Duration(sum / max(n, 1) * float64(time.Second)).Round(time.Microsecond)
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }
func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
}

// writer writes a fresh value under key i; each system provides one.
type writer func(ctx context.Context, client *http.Client, i int) error

// writeSeq numbers every write of the run, both systems' (see freshValue).
var writeSeq atomic.Uint64

// freshValue is base with its first bytes replaced by a number no earlier write carried: every
// write changes its key's value. (With one value for every write, an update of the Secret
// after the first is a no-op in Constellation's state machine, applied but neither stored nor
// announced, while etcd stores each put as a new revision: the comparison was unfair.)
func freshValue(base string) string {
	n := fmt.Sprintf("%016d", writeSeq.Add(1))
	if len(base) <= len(n) {
		return n[len(n)-len(base):]
	}
	return n + base[len(n):]
}

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
	loadBefore := loadAverage()

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
		c0, p0, s0 := cCounts(), readProcStats(), readSched(os.Getpid())
		c, err := bench("constellation", cw, wl.n, wl.clients)
		if err != nil {
			return err
		}
		c.disk = cCounts().sub(c0)
		c.proc = readProcStats().since(p0)
		c.sched = readSched(os.Getpid()).sub(s0)
		e0, es0 := eCounts(), readSched(etcdPIDs...)
		e, err := bench("etcd", ew, wl.n, wl.clients)
		if err != nil {
			return err
		}
		e.disk = eCounts().sub(e0)
		e.sched = readSched(etcdPIDs...).sub(es0)
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
	for _, r := range rows {
		c := r[0]
		fmt.Printf("constellation, %s: leader %s; %s; leader bbolt commits %.0f, mean %s\n", c.name, leaderName, c.proc,
			c.disk.boltCommits, time.Duration(c.disk.boltSeconds/max(c.disk.boltCommits, 1)*float64(time.Second)).Round(time.Microsecond))
		fmt.Printf("  leader WAL fdatasync mean: constellation %s, etcd %s\n", meanDur(c.disk.syncSeconds, c.disk.leaderCommits), meanDur(r[1].disk.syncSeconds, r[1].disk.leaderCommits))
		fmt.Printf("  scheduler, constellation process (members and clients): %s; etcd's 3 processes: %s\n", c.sched, r[1].sched)
	}
	fmt.Printf("load average: %s before, %s after\n", loadBefore, loadAverage())
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
