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
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
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
