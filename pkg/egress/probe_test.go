package egress

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func trace(warp string, pad int) string {
	return "fl=1\nip=192.0.2.7\nwarp=" + warp + "\ngateway=off\n" + strings.Repeat("x", pad) + "\n"
}

func TestProbeClassifiesEachFailure(t *testing.T) {
	mode := atomic.Value{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "on":
			io.WriteString(w, trace("on", 5000))
		case "off":
			io.WriteString(w, trace("off", 5000))
		case "short":
			io.WriteString(w, trace("on", 0))
		case "stall":
			w.Header().Set("Content-Length", "10000")
			io.WriteString(w, trace("on", 100))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "500":
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	check := v1.EgressCheck{URL: srv.URL + "/cdn-cgi/trace", Expect: "warp=(on|plus)", MinBytes: 4096,
		Timeout: &v1.Duration{Duration: 300 * time.Millisecond}}.Defaults()
	for _, c := range []struct{ mode, want string }{
		{"on", "ok: warp=on"},
		{"off", "warp=off (expected warp=(on|plus))"},
		{"short", "short body"},
		{"stall", "timeout after 300ms reading the body"},
		{"500", "HTTP 500"},
	} {
		mode.Store(c.mode)
		r := Probe(context.Background(), check, Target{}, time.Now)
		if r.OK != (c.mode == "on") || !strings.Contains(r.Summary, c.want) {
			t.Errorf("%s: ok=%v %q, want %q", c.mode, r.OK, r.Summary, c.want)
		}
	}
	check.URL = "http://127.0.0.1:1/"
	if r := Probe(context.Background(), check, Target{}, time.Now); r.OK || !strings.Contains(r.Summary, "request failed") {
		t.Errorf("refused: %+v", r)
	}
}

// TestProbeViaHTTPProxyAndNamespace: the proxy target sends the request through the proxy; the
// namespace target dials through setns (into this process's own namespace here).
func TestProbeViaHTTPProxyAndNamespace(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, trace(r.Header.Get("X-Warp"), 10))
	}))
	defer srv.Close()
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out, _ := http.NewRequest(r.Method, r.URL.String(), nil)
		out.Header.Set("X-Warp", "on")
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	check := v1.EgressCheck{URL: srv.URL + "/", Expect: "warp=(on|plus)"}.Defaults()
	pu, _ := url.Parse(proxy.URL)
	if r := Probe(context.Background(), check, Target{Proxy: pu}, time.Now); !r.OK || proxied.Load() != 1 {
		t.Fatalf("via proxy: %+v (proxied %d)", r, proxied.Load())
	}
	// Direct (no proxy): the endpoint says warp is off.
	if r := Probe(context.Background(), check, Target{}, time.Now); r.OK || !strings.Contains(r.Summary, "warp=") {
		t.Fatalf("direct: %+v", r)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the namespace dialer is covered by test/runtime only")
		return
	}
	check.Expect = ""
	r := Probe(context.Background(), check, Target{Dial: NetnsDialer(os.Getpid())}, time.Now)
	if !r.OK {
		t.Fatalf("via own namespace: %+v", r)
	}
	r = Probe(context.Background(), check, Target{Dial: NetnsDialer(1 << 30)}, time.Now)
	if r.OK || !strings.Contains(r.Summary, "netns of pid") {
		t.Fatalf("via a missing pid: %+v", r)
	}
}
