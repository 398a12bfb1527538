// Command fakenet is the test "internet": it answers like Cloudflare's /cdn-cgi/trace and records
// the source of every request, so tests can tell whether a request came through the fake WARP
// tunnel or leaked out directly.
//
// It listens on two ports: LISTEN (default :80), the direct path (warp=off: the request did not
// come through a tunnel), and TUNNEL_LISTEN (default :7000), where test/images/fakewarp sends
// the traffic of a connected tunnel (warp=on). GET /cdn-cgi/trace?bytes=N pads the answer to N
// bytes (default 0). GET /_log returns the requests seen as JSON lines; POST /_reset clears it.
// Requests carrying X-From (the fake client of fakewarp -client) are recorded with it.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type record struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Warp   string    `json:"warp"`
	From   string    `json:"from,omitempty"`
	Path   string    `json:"path"`
}

var (
	mu   sync.Mutex
	seen []record
)

func handler(warp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_log":
			mu.Lock()
			defer mu.Unlock()
			enc := json.NewEncoder(w)
			for _, rec := range seen {
				_ = enc.Encode(rec)
			}
			return
		case "/_reset":
			mu.Lock()
			seen = nil
			mu.Unlock()
			return
		case "/healthz":
			return
		}
		src, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen = append(seen, record{Time: time.Now(), Source: src, Warp: warp, From: r.Header.Get("X-From"), Path: r.URL.Path})
		mu.Unlock()
		body := fmt.Sprintf("fl=1f1\nh=%s\nip=%s\nts=%d\nvisit_scheme=http\nuag=%s\ncolo=TST\nhttp=http/1.1\nloc=ZZ\ntls=off\nsni=off\nwarp=%s\ngateway=off\n",
			r.Host, src, time.Now().Unix(), r.UserAgent(), warp)
		if n, _ := strconv.Atoi(r.URL.Query().Get("bytes")); n > len(body) {
			body += "pad=" + strings.Repeat("x", n-len(body)-5) + "\n"
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write([]byte(body))
	})
}

func main() {
	direct, tunnel := env("LISTEN", ":80"), env("TUNNEL_LISTEN", ":7000")
	go func() { log.Fatal(http.ListenAndServe(tunnel, handler("on"))) }()
	log.Printf("fakenet: direct %s, tunnel %s", direct, tunnel)
	log.Fatal(http.ListenAndServe(direct, handler("off")))
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
