// Command bench-mesh measures what the mesh data path (pkg/mesh/proxy) adds to a TCP
// connection, in one run on this machine:
//
//   - request/response latency, open loop at fixed rates (default 1,000 and 5,000 req/s, 5 s
//     each): a 64-byte message to a TCP echo server, straight to it ("direct") and through a
//     proxy listening on the virtual IP 127.0.0.2 ("mesh"); p50/p99 for both and the difference;
//   - bulk throughput, one connection moving 256 MiB each way, direct and through the mesh, and
//     the ratio;
//   - when a Docker engine answers: the same request/response against the HTTP echo test image
//     (constellation-test/echo:1, from hack/build-test-images.sh) straight to the container's
//     address, through the mesh to it, and through Docker's published port (docker-proxy). Skipped
//     with a message when Docker or the image is absent.
//
// With -pin (the default on two or more cores) the proxy runs in a child process of its own
// pinned to the last core, and the load generator and the servers are pinned to the first, so
// the proxy never waits for a core the generator holds; -pin=false runs everything in one
// process on every core. A third table measures bulk throughput "between nodes": to a server in
// a second network namespace behind a veth link shaped by tc (-link-rates, default 1 and 2.5
// Gbit/s), straight and through the proxy (needs root and iproute2; skipped with a message
// otherwise). Latency is taken from the moment a request is released by
// the open-loop schedule, so it includes waiting for a free connection but not the generator's
// timer slack.
//
//	go run ./hack/bench-mesh [-rates 1000,5000] [-duration 5s] [-conns 16] [-bulk 256] [-docker=true] [-pin=true] [-link-rates 1gbit,2500mbit]
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
)

var vip = netip.MustParseAddr("127.0.0.2")

func main() {
	ratesFlag := flag.String("rates", "1000,5000", "open-loop request rates (req/s), comma separated")
	duration := flag.Duration("duration", 5*time.Second, "how long each rate runs, per path")
	conns := flag.Int("conns", 16, "connections the load generator spreads requests over")
	size := flag.Int("size", 64, "request (and echo) size in bytes")
	bulkMiB := flag.Int("bulk", 256, "MiB moved each way in the throughput test")
	bulkRuns := flag.Int("bulk-runs", 3, "throughput runs per path (the median is shown)")
	useDocker := flag.Bool("docker", true, "also compare with docker-proxy when a Docker engine answers")
	image := flag.String("image", "constellation-test/echo:1", "HTTP echo image for the docker comparison")
	pin := flag.Bool("pin", runtime.NumCPU() >= 2, "run the proxy in a child process pinned to the last core, the load generator and servers pinned to the first")
	role := flag.String("role", "", "internal: \"proxy\" runs the pinned proxy process")
	proxyCore := flag.Int("proxy-cpu", 1, "internal: the core of the proxy process")
	linkRates := flag.String("link-rates", "1gbit,2500mbit", "tc rates of the shaped link to a second network namespace for the between-nodes bulk test, comma separated (empty: skip it)")
	flag.Parse()
	if *role == "proxy" {
		runProxyRole(*proxyCore)
		return
	}
	var rates []int
	for _, r := range strings.Split(*ratesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			fatalf("-rates: %q is not a positive number", r)
		}
		rates = append(rates, n)
	}

	var p syncer
	if *pin {
		cpu := runtime.NumCPU() - 1
		if err := pinProcess(0); err != nil {
			fatalf("pin to core 0: %v", err)
		}
		cp, err := startChildProxy(cpu)
		if err != nil {
			fatalf("proxy: %v", err)
		}
		p, proxyCPU = cp, cp.cpu
		fmt.Printf("bench-mesh: %d CPU cores; the proxy runs in its own process pinned to core %d, the load generator and the servers pinned to core 0; load average %s\n",
			runtime.NumCPU(), cpu, loadavg())
	} else {
		ip, err := proxy.New(proxy.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			fatalf("proxy: %v", err)
		}
		p = ip
		fmt.Printf("bench-mesh: %d CPU cores (GOMAXPROCS %d), nothing pinned: the load generator, the proxy and the servers share them; load average %s\n",
			runtime.NumCPU(), runtime.GOMAXPROCS(0), loadavg())
	}
	defer p.Close()
	onExit(func() { p.Close() })

	stopOnSignal()
	echo := serve(echoConn)
	bulk := serve(bulkConn)
	echoVIP := proxy.Key{Protocol: proxy.TCP, VIP: vip, Port: freePort()}
	bulkVIP := proxy.Key{Protocol: proxy.TCP, VIP: vip, Port: freePort()}
	table := proxy.Table{
		{Key: echoVIP, Service: "echo", Endpoints: []proxy.Endpoint{{Node: "here", Address: echo, Healthy: true, Local: true}}},
		{Key: bulkVIP, Service: "bulk", Endpoints: []proxy.Endpoint{{Node: "here", Address: bulk, Healthy: true, Local: true}}},
	}

	var dock *dockerTarget
	if *useDocker {
		var err error
		dock, err = startDocker(*image)
		if err != nil {
			fmt.Printf("docker comparison skipped: %v\n", err)
		} else {
			defer dock.stop()
			onExit(dock.stop)
			dock.vip = proxy.Key{Protocol: proxy.TCP, VIP: vip, Port: freePort()}
			table = append(table, proxy.Entry{Key: dock.vip, Service: "echo-container", Endpoints: []proxy.Endpoint{{Node: "here", Address: dock.containerAddr, Healthy: true, Local: true}}})
			fmt.Printf("docker: %s in container %s at %s, published on %s (%s)\n", *image, dock.name[:12], dock.containerAddr, dock.publishedAddr, dock.proxyNote)
		}
	}
	if err := p.Sync(table); err != nil {
		fatalf("proxy sync: %v", err)
	}
	addr := func(k proxy.Key) string { return netip.AddrPortFrom(k.VIP, k.Port).String() }

	type path struct {
		name, addr string
		req        requester
		base       string // the path whose latency this one is compared to
	}
	paths := []path{
		{"direct", echo, echoReq(*size), ""},
		{"mesh", addr(echoVIP), echoReq(*size), "direct"},
	}
	if dock != nil {
		paths = append(paths,
			path{"container direct (http)", dock.containerAddr, httpReq, ""},
			path{"mesh → container (http)", addr(dock.vip), httpReq, "container direct (http)"},
			path{"docker-proxy (http)", dock.publishedAddr, httpReq, "container direct (http)"},
		)
	}

	fmt.Printf("\nRequest/response, open loop, %s per rate and path, %d connections, %d-byte echo (http: GET / of the echo image)\n", *duration, *conns, *size)
	fmt.Printf("%-8s %-26s %9s %7s %10s %10s %12s %12s\n", "rate", "path", "requests", "errors", "p50", "p99", "p50 added", "p99 added")
	for _, rate := range rates {
		res := map[string]latency{}
		for _, pa := range paths {
			l, err := openLoop(pa.addr, pa.req, rate, *duration, *conns)
			if err != nil {
				fatalf("%s at %d req/s: %v", pa.name, rate, err)
			}
			res[pa.name] = l
			added50, added99 := "", ""
			if b, ok := res[pa.base]; ok && pa.base != "" {
				added50 = signed(l.p50 - b.p50)
				added99 = signed(l.p99 - b.p99)
			}
			fmt.Printf("%-8s %-26s %9d %7d %10s %10s %12s %12s\n", fmt.Sprintf("%d/s", rate), pa.name, l.n, l.errors, us(l.p50), us(l.p99), added50, added99)
		}
	}

	fmt.Printf("\nBulk throughput over loopback (CPU-bound: measures CPU, not a path), one connection, %d MiB each way, median of %d runs\n", *bulkMiB, *bulkRuns)
	n := int64(*bulkMiB) << 20
	bulkTable(bulk, addr(bulkVIP), n, *bulkRuns)

	if *linkRates != "" {
		for _, rate := range strings.Split(*linkRates, ",") {
			linkBulk(p, table, strings.TrimSpace(rate), n, *bulkRuns)
		}
	}
	if dock != nil {
		fmt.Println("\n(docker-proxy throughput is not measured: the echo image has no bulk endpoint)")
	}
}

// bulkTable prints the median throughput both ways, direct and through the mesh, and the ratio.
func bulkTable(direct, mesh string, n int64, runs int) {
	fmt.Printf("%-10s %12s %12s %7s %18s %16s\n", "direction", "direct MB/s", "mesh MB/s", "ratio", "CPU s/GB direct", "CPU s/GB mesh")
	for _, dir := range []string{"upload", "download"} {
		var d, m, dc, mc []float64
		for range runs { // alternate, so drift in the machine's load hits both
			t, c := throughput(direct, dir, n)
			d, dc = append(d, t), append(dc, c)
			t, c = throughput(mesh, dir, n)
			m, mc = append(m, t), append(mc, c)
		}
		dm, mm := median(d), median(m)
		fmt.Printf("%-10s %12.0f %12.0f %6.2fx %18.2f %16.2f\n", dir, dm, mm, mm/dm, median(dc), median(mc))
	}
}

// linkBulk measures bulk throughput to a server in a second network namespace behind a veth
// link shaped to rate, straight over the link and through the mesh (the proxy on this side, as
// on a client's node, forwarding over the link once). Skipped with a message when the namespace
// cannot be made (not root, no iproute2).
func linkBulk(p syncer, table proxy.Table, rate string, n int64, runs int) {
	l, err := newLink(rate)
	if err != nil {
		fmt.Printf("\nbetween-nodes bulk test at %s skipped: %v\n", rate, err)
		return
	}
	onExit(l.remove)
	defer l.remove()
	ln, err := l.listen()
	if err != nil {
		fatalf("listen in %s: %v", l.ns, err)
	}
	defer ln.Close()
	server := serveOn(ln, bulkConn)
	key := proxy.Key{Protocol: proxy.TCP, VIP: vip, Port: freePort()}
	if err := p.Sync(append(slices.Clone(table), proxy.Entry{Key: key, Service: "bulk-link", Endpoints: []proxy.Endpoint{{Node: "peer", Address: server, Healthy: true}}})); err != nil {
		fatalf("proxy sync: %v", err)
	}
	fmt.Printf("\nBulk throughput between nodes: a veth link to namespace %s shaped by tc tbf to %s each way, one connection, %d MiB each way, median of %d runs\n", l.ns, rate, n>>20, runs)
	bulkTable(server, netip.AddrPortFrom(key.VIP, key.Port).String(), n, runs)
}

// --- servers ---

func serve(handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("listen: %v", err)
	}
	return serveOn(ln, handle)
}

func echoConn(c net.Conn) { io.Copy(c, c) }

// bulkConn: 'u' then bytes until EOF, answered with the count (8 bytes); or 'd' and an 8-byte
// count, answered with that many bytes.
func bulkConn(c net.Conn) {
	var cmd [9]byte
	if _, err := io.ReadFull(c, cmd[:1]); err != nil {
		return
	}
	switch cmd[0] {
	case 'u':
		n, _ := discard(c)
		binary.BigEndian.PutUint64(cmd[1:], uint64(n))
		c.Write(cmd[1:])
	case 'd':
		if _, err := io.ReadFull(c, cmd[1:]); err != nil {
			return
		}
		io.CopyBuffer(c, io.LimitReader(zeros{}, int64(binary.BigEndian.Uint64(cmd[1:]))), make([]byte, 256<<10))
	}
}

// discard reads c to its end in large reads (io.Discard's ReadFrom reads 8 KiB at a time).
func discard(c net.Conn) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func freePort() uint16 {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(vip, 0).String())
	if err != nil {
		fatalf("free port on %s: %v", vip, err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// --- request/response ---

// requester does one request on a connection it owns (with its reader).
type requester func(c net.Conn, r *bufio.Reader) error

func echoReq(size int) requester {
	return func(c net.Conn, r *bufio.Reader) error {
		buf := make([]byte, size)
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(r, buf)
		return err
	}
}

var httpGet = []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")

func httpReq(c net.Conn, r *bufio.Reader) error {
	if _, err := c.Write(httpGet); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

type latency struct {
	n, errors int
	p50, p99  time.Duration
}

// openLoop releases rate requests per second for d, whatever the answers do; conns workers
// each own a connection and take the next released request.
func openLoop(addr string, req requester, rate int, d time.Duration, conns int) (latency, error) {
	type worker struct {
		c net.Conn
		r *bufio.Reader
	}
	var ws []worker
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return latency{}, err
		}
		defer c.Close()
		ws = append(ws, worker{c, bufio.NewReader(c)})
	}
	// Warm up each connection.
	for _, w := range ws {
		if err := req(w.c, w.r); err != nil {
			return latency{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	total := int(float64(rate) * d.Seconds())
	released := make(chan time.Time, total)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	errs := 0
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range released {
				err := req(w.c, w.r)
				took := time.Since(at)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					lat = append(lat, took)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		released <- time.Now()
	}
	close(released)
	wg.Wait()
	slices.Sort(lat)
	out := latency{n: len(lat) + errs, errors: errs}
	if len(lat) > 0 {
		out.p50 = lat[len(lat)*50/100]
		out.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return out, nil
}

// --- bulk ---

// cpuTime is the process's user+system CPU time so far.
// proxyCPU, when set, reads the CPU time of the proxy's own process (-pin).
var proxyCPU func() time.Duration

// cpuTime is the CPU time of the generator, the servers and the proxy so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if proxyCPU != nil {
		t += proxyCPU()
	}
	return t
}

// throughput returns MB/s and the CPU the generator, the server and the proxy spent per GB.
func throughput(addr, dir string, n int64) (float64, float64) {
	cpu0 := cpuTime()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fatalf("bulk dial %s: %v", addr, err)
	}
	defer c.Close()
	start := time.Now()
	var hdr [9]byte
	switch dir {
	case "upload":
		hdr[0] = 'u'
		c.Write(hdr[:1])
		if _, err := io.CopyBuffer(c, io.LimitReader(zeros{}, n), make([]byte, 256<<10)); err != nil {
			fatalf("bulk upload: %v", err)
		}
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.ReadFull(c, hdr[1:]); err != nil {
			fatalf("bulk upload answer: %v", err)
		}
		if got := int64(binary.BigEndian.Uint64(hdr[1:])); got != n {
			fatalf("bulk upload: server got %d bytes, sent %d", got, n)
		}
	case "download":
		hdr[0] = 'd'
		binary.BigEndian.PutUint64(hdr[1:], uint64(n))
		c.Write(hdr[:])
		got, err := discard(c)
		if err != nil || got != n {
			fatalf("bulk download: %d of %d bytes, %v", got, n, err)
		}
	}
	return float64(n) / 1e6 / time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds() / (float64(n) / 1e9)
}

// --- docker ---

type dockerTarget struct {
	name, containerAddr, publishedAddr, proxyNote string
	vip                                           proxy.Key
	once                                          sync.Once
}

func startDocker(image string) (*dockerTarget, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, errors.New("no docker command")
	}
	if out, err := exec.Command("docker", "version", "-f", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("no Docker engine answers: %s", firstLine(out))
	}
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		return nil, fmt.Errorf("image %s absent (build it with hack/build-test-images.sh)", image)
	}
	out, err := exec.Command("docker", "run", "-d", "--rm", "--label", "constellation.bench=mesh", "-p", "127.0.0.1::8080", image).Output()
	if err != nil {
		return nil, fmt.Errorf("docker run %s: %v", image, err)
	}
	d := &dockerTarget{name: strings.TrimSpace(string(out))}
	ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", d.name).Output()
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("docker inspect: %v", err)
	}
	d.containerAddr = net.JoinHostPort(strings.TrimSpace(string(ip)), "8080")
	pub, err := exec.Command("docker", "port", d.name, "8080/tcp").Output()
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("docker port: %v", err)
	}
	d.publishedAddr = firstLine(pub)
	for _, a := range []string{d.containerAddr, d.publishedAddr} {
		if err := waitHTTP(a); err != nil {
			d.stop()
			return nil, err
		}
	}
	// docker-proxy carries loopback traffic to a published port (iptables' DNAT skips 127/8);
	// say whether one runs for this port rather than assume it.
	_, port, _ := net.SplitHostPort(d.publishedAddr)
	d.proxyNote = "no docker-proxy process seen for it: the engine may run without the userland proxy"
	if ps, err := exec.Command("pgrep", "-a", "docker-proxy").Output(); err == nil {
		for _, l := range strings.Split(string(ps), "\n") {
			if strings.Contains(l, "-host-port "+port) {
				d.proxyNote = "served by docker-proxy"
			}
		}
	}
	return d, nil
}

func waitHTTP(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			err = httpReq(c, bufio.NewReader(c))
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("echo container at %s never answered: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *dockerTarget) stop() {
	d.once.Do(func() { exec.Command("docker", "rm", "-f", d.name).Run() })
}

func stopOnSignal() {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		cleanup()
		os.Exit(1)
	}()
}

// --- output ---

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func signed(d time.Duration) string {
	return fmt.Sprintf("%+.0f µs", float64(d)/float64(time.Microsecond))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// atExit holds what must be undone on a fatal error or a signal too (the docker container, the
// link's namespace), last first.
var (
	atExitMu sync.Mutex
	atExit   []func()
)

func onExit(f func()) {
	atExitMu.Lock()
	defer atExitMu.Unlock()
	atExit = append(atExit, f)
}

func cleanup() {
	atExitMu.Lock()
	fs := atExit
	atExit = nil
	atExitMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-mesh: "+format+"\n", args...)
	cleanup()
	os.Exit(1)
}
