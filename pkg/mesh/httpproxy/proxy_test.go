package httpproxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Proxy.Sync opens a listener per entry, swaps upstreams in place (the breaker of an upstream
// that stays is kept) and closes the listeners of entries that are gone.
func TestProxySync(t *testing.T) {
	bad, good := farm(t, "500"), goodUpstream(t)
	p, err := New(Config{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	vip := netip.MustParseAddr("127.0.0.1")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	pol := testPolicy()
	pol.Breaker = BreakerPolicy{ConsecutiveFailures: 2, OpenFor: time.Hour}
	entry := Entry{Key: Key{VIP: vip, Port: port}, Service: "web", Policy: pol,
		Upstreams: []Upstream{up("bad", bad, 0), up("good", good, 1)}}
	if err := p.Sync(Table{entry}); err != nil {
		t.Fatal(err)
	}
	url := "http://" + entry.Key.String() + "/"
	getFrom := func() string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get(HeaderUpstream)
	}
	for range 2 {
		if from := getFrom(); from != "good" {
			t.Fatalf("answered by %q, want good", from)
		}
	}
	snap := p.Snapshot()
	if len(snap) != 1 || snap[0].Upstreams[0].Breaker != StateOpen {
		t.Fatalf("snapshot %+v, want bad's breaker open", snap)
	}
	// Same upstreams again (a resync): the open breaker stays, bad is not asked.
	if err := p.Sync(Table{entry}); err != nil {
		t.Fatal(err)
	}
	before := bad.count.Load()
	getFrom()
	if bad.count.Load() != before || p.Snapshot()[0].Upstreams[0].Breaker != StateOpen {
		t.Fatalf("resync reset the breaker: bad asked %d more times", bad.count.Load()-before)
	}
	// Gone from the table: the listener closes.
	if err := p.Sync(nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", entry.Key.String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after its entry was removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(p.Snapshot()) != 0 {
		t.Fatalf("snapshot after removal: %+v", p.Snapshot())
	}
}
