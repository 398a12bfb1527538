// Command echo is a test HTTP server. GET / answers "echo VERSION HOSTNAME PATH"; GET /healthz
// answers 200 while healthy and 503 after POST /admin/unhealthy (POST /admin/healthy restores it).
// With -probe URL it instead GETs URL once and exits 0 on a 2xx/3xx answer (for Docker's
// HEALTHCHECK in a FROM scratch image); -probe-count N GETs it N times, prints how many answers
// each value of -count-header had and exits 0 only if every answer was 2xx/3xx and carried
// that header (tests of the mesh's HTTP proxy). With FAIL_STATUS set, the replica whose
// hostname is FAIL_HOST (any, when FAIL_HOST is empty) answers every request but /healthz with
// that status: healthy, but failing. It also answers UDP datagrams on -udp (default :8053)
// with "echo VERSION HOSTNAME " and the datagram; -udp-probe ADDR sends one datagram there and
// exits 0 when an echo comes back. SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", envOr("LISTEN", ":8080"), "address to listen on")
	probe := flag.String("probe", "", "GET this URL once and exit 0 if healthy")
	tcpProbe := flag.String("tcp-probe", "", "dial this address once and exit 0 if it accepts")
	udpListen := flag.String("udp", envOr("UDP_LISTEN", ":8053"), "UDP address to echo datagrams on (empty: none)")
	udpProbe := flag.String("udp-probe", "", "send one datagram to this address and exit 0 if it is echoed")
	probeCount := flag.Int("probe-count", 1, "with -probe: GET the URL this many times")
	countHeader := flag.String("count-header", "", "with -probe-count: count answers by this header, which each must carry")
	flag.Parse()
	if *udpProbe != "" {
		os.Exit(probeUDP(*udpProbe))
	}
	if *probe != "" && *probeCount > 1 {
		os.Exit(probeMany(*probe, *probeCount, *countHeader))
	}
	if *probe != "" {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(*probe)
		if err != nil || resp.StatusCode >= 400 {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if *tcpProbe != "" {
		conn, err := net.DialTimeout("tcp", *tcpProbe, 2*time.Second)
		if err != nil {
			os.Exit(1)
		}
		conn.Close()
		os.Exit(0)
	}
	version := envOr("ECHO_VERSION", "0")
	host, _ := os.Hostname()
	var healthy atomic.Bool
	healthy.Store(os.Getenv("START_UNHEALTHY") == "")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /admin/unhealthy", func(w http.ResponseWriter, r *http.Request) { healthy.Store(false) })
	mux.HandleFunc("POST /admin/healthy", func(w http.ResponseWriter, r *http.Request) { healthy.Store(true) })
	failStatus, _ := strconv.Atoi(os.Getenv("FAIL_STATUS"))
	if fh := os.Getenv("FAIL_HOST"); fh != "" && fh != host {
		failStatus = 0
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if failStatus != 0 {
			http.Error(w, "failing on purpose (FAIL_STATUS)", failStatus)
			return
		}
		fmt.Fprintf(w, "echo %s %s %s\n", version, host, r.URL.Path)
	})
	if *udpListen != "" {
		pc, err := net.ListenPacket("udp", *udpListen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(append([]byte(fmt.Sprintf("echo %s %s ", version, host)), buf[:n]...), from)
			}
		}()
	}
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	fmt.Printf("echo %s listening on %s\n", version, *listen)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// probeUDP sends "ping" to addr (a name is resolved) and waits up to 2 s for the echo; it prints
// the answer and returns the exit status.
func probeUDP(addr string) int {
	conn, err := net.DialTimeout("udp", addr, 2*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(string(buf[:n]))
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// probeMany GETs url n times over one keep-alive client; it prints "<header value> <count>"
// lines and "failed <count>", and returns 0 only when every answer was 2xx/3xx and carried
// header (when set).
func probeMany(url string, n int, header string) int {
	c := http.Client{Timeout: 10 * time.Second}
	counts := map[string]int{}
	failed := 0
	for range n {
		resp, err := c.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		v := resp.Header.Get(header)
		if resp.StatusCode >= 400 || (header != "" && v == "") {
			fmt.Fprintf(os.Stderr, "status %d, %s %q\n", resp.StatusCode, header, v)
			failed++
			continue
		}
		counts[v]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s %d\n", k, counts[k])
	}
	fmt.Printf("failed %d\n", failed)
	if failed > 0 {
		return 1
	}
	return 0
}
