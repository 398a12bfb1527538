// Command bench-proxy measures the mesh's HTTP failover proxy (pkg/mesh/httpproxy) in one run
// on this machine, against the same upstream:
//
//   - open-loop latency at fixed rates (default 500, 1,000 and 2,000 req/s, 5 s each after a
//     1 s warm-up), GET of a 1 KiB body: straight to the upstream ("direct"), through a bare
//     httputil.ReverseProxy ("reverseproxy"), through this proxy with two upstreams in priority
//     order ("constellation"), and through real Traefik's failover service (main and fallback,
//     file provider; "traefik") when its binary is found: p50, p99, and the proxy's CPU per
//     request (utime+stime of its process over the run / requests);
//   - the failure test: two upstreams, the first failing 50 % of requests with 500, GETs at a
//     fixed rate through this proxy (default policy) and through Traefik's failover service:
//     the share of requests the client saw fail.
//
// The generator runs in this process, pinned to CPU 0 (GOMAXPROCS 1); every proxy and the
// upstream servers run as child processes pinned to CPU 1 (GOMAXPROCS 1), when the machine has
// two cores and taskset exists (the output says what was pinned). Latency is charged from each
// request's intended send time (no coordinated omission): a stalled proxy shows as queueing.
//
//	go run ./hack/bench-proxy [-rates 500,1000,2000] [-duration 5s] [-traefik bin/traefik]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/constellation-sh/constellation/pkg/mesh/httpproxy"
)

const roleEnv = "BENCH_PROXY_ROLE"

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		child(role, os.Args[1:])
		return
	}
	ratesFlag := flag.String("rates", "500,1000,2000", "open-loop request rates (req/s), comma separated")
	duration := flag.Duration("duration", 5*time.Second, "how long each rate runs, per target")
	warmup := flag.Duration("warmup", time.Second, "warm-up before each measured run")
	conns := flag.Int("conns", 64, "most connections the generator opens to a target")
	repeats := flag.Int("repeats", 3, "measured runs per target and rate, interleaved; the run with the median p99 is shown")
	failRate := flag.Int("fail-rate", 500, "request rate of the failure test (req/s)")
	failDuration := flag.Duration("fail-duration", 10*time.Second, "duration of the failure test")
	traefikBin := flag.String("traefik", "", "Traefik binary (default bin/traefik, else ~/.cache/constellation/traefik-*)")
	flag.Parse()
	var rates []int
	for _, r := range strings.Split(*ratesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			fatalf("-rates: %q is not a positive number", r)
		}
		rates = append(rates, n)
	}
	pinned := os.Getenv("BENCH_PROXY_PINNED") != "" // re-exec'd on CPU 0: NumCPU now says 1
	pin := pinned || (runtime.NumCPU() >= 2 && haveTaskset())
	if pin && !pinned {
		// Re-exec the generator on CPU 0.
		cmd := exec.Command("taskset", append([]string{"-c", "0", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), "BENCH_PROXY_PINNED=1", "GOMAXPROCS=1")
		cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
		if err := cmd.Run(); err != nil {
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if pin {
		fmt.Printf("bench-proxy: 2 cores used; generator pinned to CPU 0 (GOMAXPROCS 1), upstreams and proxies to CPU 1 (GOMAXPROCS 1); load average %s\n", loadavg())
	} else {
		fmt.Printf("bench-proxy: %d cores, nothing pinned (taskset missing or one core); load average %s\n", runtime.NumCPU(), loadavg())
	}
	tb := findTraefik(*traefikBin)

	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(name, role string, args ...string) *proc {
		p := startChild(pin, name, role, args...)
		procs = append(procs, p)
		return p
	}

	// Latency: one healthy upstream as main, another as the fallback nobody needs.
	upA, upB := freePort(), freePort()
	start("upstreams", "upstream", "-ports", fmt.Sprintf("%d,%d", upA, upB), "-fail", "0")
	a, b := fmt.Sprintf("http://127.0.0.1:%d", upA), fmt.Sprintf("http://127.0.0.1:%d", upB)
	rp := start("reverseproxy", "reverseproxy", "-port", strconv.Itoa(freePort()), "-upstreams", a)
	cp := start("constellation", "constellation", "-port", strconv.Itoa(freePort()), "-upstreams", a+","+b)
	targets := []*target{{name: "direct", url: a + "/"}, {name: "reverseproxy", url: rp.url, p: rp}, {name: "constellation", url: cp.url, p: cp}}
	if tb != "" {
		tp := startTraefik(pin, tb, a, b)
		procs = append(procs, tp)
		targets = append(targets, &target{name: "traefik", url: tp.url, p: tp})
		fmt.Printf("traefik: %s (%s)\n", tb, traefikVersion(tb))
	} else {
		fmt.Println("traefik: no binary found (hack/traefik.sh builds one): its rows are skipped")
	}
	for _, t := range targets {
		if err := waitReady(ctx, t.url); err != nil {
			fatalf("%s at %s: %v", t.name, t.url, err)
		}
	}

	fmt.Printf("\nOpen loop, GET 1 KiB, %d runs of %s per target and rate after %s warm-up (the median-p99 run shown), latency from the intended send time:\n", *repeats, *duration, *warmup)
	fmt.Printf("%-14s %7s %9s %9s %9s %13s %7s\n", "target", "rate", "achieved", "p50", "p99", "cpu/request", "errors")
	type key struct {
		target string
		rate   int
	}
	results := map[key]result{}
	for _, rate := range rates {
		for _, t := range targets {
			if ctx.Err() != nil {
				return
			}
			run(ctx, t, rate, *warmup, *conns, nil) // warm-up
			var rs []result
			for range max(*repeats, 1) {
				rs = append(rs, run(ctx, t, rate, *duration, *conns, t.p))
			}
			slices.SortFunc(rs, func(a, b result) int { return int(a.p99 - b.p99) })
			r := rs[len(rs)/2]
			results[key{t.name, rate}] = r
			cpu := "-"
			if t.p != nil {
				cpu = fmt.Sprintf("%.1f µs", r.cpuPerReq)
			}
			fmt.Printf("%-14s %7d %9.0f %9s %9s %13s %7d\n", t.name, rate, r.achieved, ms(r.p50), ms(r.p99), cpu, r.errors)
		}
	}
	fmt.Println("\nRatios (same run):")
	for _, rate := range rates {
		c, rv := results[key{"constellation", rate}], results[key{"reverseproxy", rate}]
		d := results[key{"direct", rate}]
		line := fmt.Sprintf("  %5d req/s: constellation p99 %.2fx reverseproxy's (added over direct: %s vs %s; goal: p99 <= 1.10x), cpu/request %.2fx",
			rate, ratio(c.p99, rv.p99), ms(c.p99-d.p99), ms(rv.p99-d.p99), c.cpuPerReq/rv.cpuPerReq)
		if tr, ok := results[key{"traefik", rate}]; ok {
			line += fmt.Sprintf("; vs traefik: p99 %.2fx, cpu/request %.2fx (goal: both < 1)", ratio(c.p99, tr.p99), c.cpuPerReq/tr.cpuPerReq)
		}
		fmt.Println(line)
	}

	// Failure test: the main upstream fails half of its requests.
	fA, fB := freePort(), freePort()
	start("failing-upstreams", "upstream", "-ports", fmt.Sprintf("%d,%d", fA, fB), "-fail", "50")
	fa, fb := fmt.Sprintf("http://127.0.0.1:%d", fA), fmt.Sprintf("http://127.0.0.1:%d", fB)
	fcp := start("constellation", "constellation", "-port", strconv.Itoa(freePort()), "-upstreams", fa+","+fb)
	ftargets := []*target{{name: "direct (main)", url: fa + "/"}, {name: "constellation", url: fcp.url, p: fcp}}
	if tb != "" {
		ftp := startTraefik(pin, tb, fa, fb)
		procs = append(procs, ftp)
		ftargets = append(ftargets, &target{name: "traefik", url: ftp.url, p: ftp})
	}
	for _, t := range ftargets {
		if err := waitReady(ctx, t.url); err != nil {
			fatalf("%s: %v", t.name, err)
		}
	}
	fmt.Printf("\nFailure test: two upstreams, the first answers 500 to 50 %% of requests; GET at %d req/s for %s (goal: <= 0.1 %% visible):\n", *failRate, *failDuration)
	for _, t := range ftargets {
		r := run(ctx, t, *failRate, *failDuration, *conns, nil)
		fmt.Printf("  %-14s %6d requests, %5d failed: %.3f %% (p99 %s)\n", t.name, r.n, r.errors, 100*float64(r.errors)/float64(max(r.n, 1)), ms(r.p99))
	}
	fmt.Println("\nThe machine was shared with other work while this ran (load average " + loadavg() + "); rerun for stable figures.")
}

type target struct {
	name string
	url  string
	p    *proc
}

type result struct {
	n, errors int
	achieved  float64
	p50, p99  time.Duration
	cpuPerReq float64 // µs
}

var client *http.Client

// run sends GETs to t at rate for d, open loop, and measures each from its intended send time.
func run(ctx context.Context, t *target, rate int, d time.Duration, conns int, p *proc) result {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true},
			Timeout: 30 * time.Second}
	}
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var wg sync.WaitGroup
	cpu0 := p.cpu()
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := client.Get(t.url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				errs.Add(1)
			}
			lat[i] = time.Since(at)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := p.cpu() - cpu0
	slices.Sort(lat)
	r := result{n: n, errors: int(errs.Load()), achieved: float64(n) / elapsed.Seconds()}
	if n > 0 {
		r.p50, r.p99 = lat[n/2], lat[min(n-1, n*99/100)]
		r.cpuPerReq = cpu.Seconds() * 1e6 / float64(n)
	}
	return r
}

// proc is a child process (an upstream farm or a proxy).
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func startChild(pin bool, name, role string, args ...string) *proc {
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	argv := append([]string{self}, args...)
	if pin {
		argv = append([]string{"taskset", "-c", "1"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		fatalf("%s did not start: %v", name, err)
	}
	p.url = strings.TrimSpace(line)
	return p
}

func (p *proc) stop() {
	if p != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Wait()
	}
}

// cpu is the process's user+system time so far (of the process taskset exec'd into).
func (p *proc) cpu() time.Duration {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// child runs one role and prints its URL on stdout when it listens.
func child(role string, args []string) {
	fs := flag.NewFlagSet(role, flag.ExitOnError)
	port := fs.Int("port", 0, "listen port")
	ports := fs.String("ports", "", "upstream ports")
	ups := fs.String("upstreams", "", "upstream URLs")
	fail := fs.Int("fail", 0, "percent of requests the first upstream fails with 500")
	fs.Parse(args)
	body := make([]byte, 1024)
	switch role {
	case "upstream":
		var first string
		for i, ps := range strings.Split(*ports, ",") {
			failing := i == 0 && *fail > 0
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health" && failing && rand.IntN(100) < *fail {
					w.WriteHeader(500)
					return
				}
				w.Write(body)
			})
			ln := listen(ps)
			if first == "" {
				first = "http://" + ln.Addr().String()
			}
			go http.Serve(ln, h)
		}
		fmt.Println(first)
	case "reverseproxy":
		u, _ := url.Parse(*ups)
		rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }, Transport: httpproxy.NewTransport(nil)}
		ln := listen(strconv.Itoa(*port))
		go http.Serve(ln, rp)
		fmt.Println("http://" + ln.Addr().String() + "/")
	case "constellation":
		h := httpproxy.NewHandler(httpproxy.HandlerConfig{Service: "bench",
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		var list []httpproxy.Upstream
		for i, s := range strings.Split(*ups, ",") {
			u, _ := url.Parse(s)
			list = append(list, httpproxy.Upstream{Name: s, URL: u, Priority: i, Weight: 1, Healthy: true})
		}
		if err := h.Set(httpproxy.DefaultPolicy(), list); err != nil {
			fatalf("%v", err)
		}
		ln := listen(strconv.Itoa(*port))
		go http.Serve(ln, h)
		fmt.Println("http://" + ln.Addr().String() + "/")
	default:
		fatalf("unknown role %q", role)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
}

// startTraefik runs Traefik with a failover service (main a, fallback b, a health check on
// main as its failover needs) on one entry point.
func startTraefik(pin bool, bin, a, b string) *proc {
	dir, err := os.MkdirTemp("", "bench-proxy-traefik")
	if err != nil {
		fatalf("%v", err)
	}
	dyn := fmt.Sprintf(`[http.routers.r]
  rule = "PathPrefix(`+"`/`"+`)"
  service = "fo"
  entryPoints = ["web"]
[http.services.fo.failover]
  service = "main"
  fallback = "backup"
[http.services.main.loadBalancer]
  [[http.services.main.loadBalancer.servers]]
    url = %q
  [http.services.main.loadBalancer.healthCheck]
    path = "/health"
    interval = "1s"
    timeout = "500ms"
[http.services.backup.loadBalancer]
  [[http.services.backup.loadBalancer.servers]]
    url = %q
`, a, b)
	dynPath := filepath.Join(dir, "dynamic.toml")
	if err := os.WriteFile(dynPath, []byte(dyn), 0o644); err != nil {
		fatalf("%v", err)
	}
	port := freePort()
	argv := []string{bin, "--entryPoints.web.address=127.0.0.1:" + strconv.Itoa(port), "--providers.file.filename=" + dynPath,
		"--log.level=ERROR", "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false"}
	if pin {
		argv = append([]string{"taskset", "-c", "1"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fatalf("start traefik: %v", err)
	}
	return &proc{name: "traefik", url: fmt.Sprintf("http://127.0.0.1:%d/", port), cmd: cmd}
}

func traefikVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "version unknown"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Version:") {
			return strings.TrimSpace(l)
		}
	}
	return "version unknown"
}

func findTraefik(flagged string) string {
	if flagged != "" {
		return flagged
	}
	if st, err := os.Stat("bin/traefik"); err == nil && !st.IsDir() {
		return "bin/traefik"
	}
	home, _ := os.UserHomeDir()
	m, _ := filepath.Glob(filepath.Join(home, ".cache/constellation/traefik-v*"))
	for _, p := range m {
		if !strings.HasSuffix(p, ".tmp") {
			return p
		}
	}
	return ""
}

func waitReady(ctx context.Context, u string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 500 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not answering after 20s")
}

func listen(port string) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fatalf("listen: %v", err)
	}
	return ln
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func haveTaskset() bool { _, err := exec.LookPath("taskset"); return err == nil }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-proxy: "+format+"\n", args...)
	os.Exit(1)
}
