package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestTCPEchoWithHalfClose(t *testing.T) {
	a := startServer(t, "a")
	p, reg := newProxy(t, Config{})
	e := tcpEntry(t, "web", healthy(a.addr()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, e.Key)
	if c.server != "a" {
		t.Fatalf("served by %q", c.server)
	}
	c.roundTrip(t, "hello")
	// Half-close: the server sees EOF, answers after it, and the answer still arrives.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c.r)
	if err != nil || string(rest) != "bye\n" {
		t.Fatalf("after half-close read %q, %v; want the server's bye", rest, err)
	}
	port := strconv.Itoa(int(e.Port))
	l := []string{"service", "web", "port", port, "protocol", "tcp"}
	eventually(t, "active connections back to 0", func() bool {
		return metric(t, reg, "constellation_mesh_active_connections", l...) == 0
	})
	if got := metric(t, reg, "constellation_mesh_connections_total", l...); got != 1 {
		t.Errorf("connections_total = %v, want 1", got)
	}
	if got := metric(t, reg, "constellation_mesh_bytes_total", append(l, "direction", "in")...); got != 6 {
		t.Errorf("bytes in = %v, want 6 (hello\\n)", got)
	}
	if got := metric(t, reg, "constellation_mesh_bytes_total", append(l, "direction", "out")...); got != float64(len("a\nhello\nbye\n")) {
		t.Errorf("bytes out = %v, want %d", got, len("a\nhello\nbye\n"))
	}
	if got := metric(t, reg, "constellation_mesh_endpoints", append(l, "state", "healthy")...); got != 1 {
		t.Errorf("endpoints healthy = %v, want 1", got)
	}
}

// A connect that fails is retried on the next endpoint before the client notices.
func TestTCPFailover(t *testing.T) {
	b := startServer(t, "b")
	for _, tt := range []struct {
		name string
		dead string
	}{
		{"refused", closedAddr(t)},
		{"timeout", blackholeAddr(t)},
		// TEST-NET-1 is never routed: unreachable, or a timeout.
		{"unroutable", "192.0.2.1:9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, reg := newProxy(t, Config{DialTimeout: 200 * time.Millisecond})
			dead := Endpoint{Node: "here", Address: tt.dead, Healthy: true, Local: true} // tried first
			e := tcpEntry(t, "web", dead, healthy(b.addr()))
			if err := p.Sync(Table{e}); err != nil {
				t.Fatal(err)
			}
			c := connect(t, e.Key)
			if c.server != "b" {
				t.Fatalf("served by %q, want b", c.server)
			}
			c.roundTrip(t, "still works")
			l := []string{"service", "web", "port", strconv.Itoa(int(e.Port)), "protocol", "tcp"}
			if got := metric(t, reg, "constellation_mesh_connect_failures_total", l...); got != 1 {
				t.Errorf("connect failures = %v, want 1", got)
			}
			// The dead endpoint is now suspect: the next connection goes straight to b.
			connect(t, e.Key)
			if got := metric(t, reg, "constellation_mesh_connect_failures_total", l...); got != 1 {
				t.Errorf("connect failures after a second connection = %v, want still 1", got)
			}
		})
	}
}

func TestTCPAllEndpointsFail(t *testing.T) {
	p, reg := newProxy(t, Config{DialTimeout: 200 * time.Millisecond})
	e := tcpEntry(t, "web", healthy(closedAddr(t)), healthy(closedAddr(t)), Endpoint{Address: "127.0.0.1:1"})
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	// The proxy resets the connection: so fast on loopback that the dial itself may see it.
	if c, err := net.Dial("tcp", netip.AddrPortFrom(e.VIP, e.Port).String()); err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read = %d, %v; want the connection reset", n, err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial: %v, want success or a reset", err)
	}
	eventually(t, "the connection to be counted unavailable", func() bool {
		return metric(t, reg, "constellation_mesh_unavailable_total", "service", "web") == 1
	})
	l := []string{"service", "web", "port", strconv.Itoa(int(e.Port)), "protocol", "tcp"}
	if got := metric(t, reg, "constellation_mesh_connect_failures_total", l...); got != 2 {
		t.Errorf("connect failures = %v, want 2 (the unhealthy endpoint is never tried)", got)
	}
	if got := metric(t, reg, "constellation_mesh_unavailable_total", l...); got != 1 {
		t.Errorf("unavailable = %v, want 1", got)
	}
}

func TestTCPUnhealthyEndpointGetsNothing(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	p, _ := newProxy(t, Config{})
	sick := Endpoint{Address: a.addr(), Healthy: false, Local: true}
	e := tcpEntry(t, "web", sick, healthy(b.addr()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if c := connect(t, e.Key); c.server != "b" {
			t.Fatalf("connection served by %q, want only b", c.server)
		}
	}
	// Turning unhealthy later stops new connections too.
	e.Endpoints = []Endpoint{healthy(a.addr()), {Address: b.addr()}}
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if c := connect(t, e.Key); c.server != "a" {
			t.Fatalf("connection served by %q after b turned unhealthy", c.server)
		}
	}
}

func TestTCPLocalFirst(t *testing.T) {
	a, b := startServer(t, "remote"), startServer(t, "local")
	p, _ := newProxy(t, Config{})
	e := tcpEntry(t, "web", healthy(a.addr()), Endpoint{Address: b.addr(), Healthy: true, Local: true})
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if c := connect(t, e.Key); c.server != "local" {
			t.Fatalf("served by %q, want the local replica", c.server)
		}
	}
}

// Least connections: long connections opened while one endpoint already holds two go to the
// other until they are even, then alternate.
func TestTCPLeastConnections(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	p, _ := newProxy(t, Config{})
	e := tcpEntry(t, "web", healthy(a.addr()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for range 2 {
		count[connect(t, e.Key).server]++
	}
	e.Endpoints = append(e.Endpoints, healthy(b.addr()))
	if err := p.SetEndpoints(e.Key, e.Endpoints); err != nil {
		t.Fatal(err)
	}
	var order []string
	for range 6 {
		c := connect(t, e.Key)
		count[c.server]++
		order = append(order, c.server)
	}
	if strings.Join(order[:2], ",") != "b,b" {
		t.Errorf("after adding b the first two connections went to %v, want b,b", order[:2])
	}
	if count["a"] != 4 || count["b"] != 4 {
		t.Errorf("connections per endpoint = %v, want 4 each", count)
	}
	snap := p.Snapshot()
	if len(snap) != 1 || len(snap[0].Endpoints) != 2 || snap[0].Endpoints[0].Active != 4 || snap[0].Endpoints[1].Active != 4 {
		t.Errorf("Snapshot = %+v, want 4 active on each", snap)
	}
}

// Changing the endpoints (even removing the one in use, or the whole listener) leaves open
// connections alone; new ones follow the new table.
func TestTCPEndpointChangesKeepOpenConnections(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	p, _ := newProxy(t, Config{})
	e := tcpEntry(t, "web", healthy(a.addr()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	old := connect(t, e.Key)
	e.Endpoints = []Endpoint{healthy(b.addr())}
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	old.roundTrip(t, "a is gone from the table but this connection is not")
	if c := connect(t, e.Key); c.server != "b" {
		t.Fatalf("new connection served by %q, want b", c.server)
	}
	if err := p.Sync(nil); err != nil {
		t.Fatal(err)
	}
	old.roundTrip(t, "the listener is gone but this connection is not")
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(e.VIP, e.Port).String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the removed listener still accepts")
	}
	if len(p.Snapshot()) != 0 {
		t.Errorf("Snapshot after Sync(nil) = %+v", p.Snapshot())
	}
}

func TestSyncErrors(t *testing.T) {
	a := startServer(t, "a")
	p, _ := newProxy(t, Config{})
	good := tcpEntry(t, "web", healthy(a.addr()))
	// A port someone else holds: reported, the rest applied, retried by the next Sync.
	busy := tcpEntry(t, "db", healthy(a.addr()))
	holder, err := net.Listen("tcp", netip.AddrPortFrom(busy.VIP, busy.Port).String())
	if err != nil {
		t.Fatal(err)
	}
	bad := []Entry{
		{Key: Key{Protocol: "sctp", VIP: vip, Port: 1}, Service: "x"},
		{Key: Key{Protocol: TCP, Port: 1}, Service: "x"},
		{Key: Key{Protocol: TCP, VIP: vip}, Service: "x"},
		{Key: Key{Protocol: TCP, VIP: vip, Port: 1}},
		good, // listed twice
		{Key: Key{Protocol: TCP, VIP: netip.MustParseAddr("127.0.0.3"), Port: good.Port}, Service: "web"}, // same labels
	}
	err = p.Sync(append(Table{good, busy}, bad...))
	for _, want := range []string{"protocol: must be tcp or udp", "vip: must be set", "port: must be 1-65535", "service: must be set", "listed twice", "already used by", "db"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Sync error %v, want it to mention %q", err, want)
		}
	}
	if c := connect(t, good.Key); c.server != "a" {
		t.Fatal("the valid entry was not applied")
	}
	holder.Close()
	if err := p.Sync(Table{good, busy}); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	connect(t, busy.Key)
	if err := p.SetEndpoints(Key{Protocol: TCP, VIP: vip, Port: 1}, nil); !errors.Is(err, ErrUnknownListener) {
		t.Errorf("SetEndpoints of an unknown key = %v", err)
	}
}

func TestNewRejectsBadConfigAndDoubleRegistration(t *testing.T) {
	if _, err := New(Config{DialTimeout: -1}); err == nil || !strings.Contains(err.Error(), "DialTimeout") {
		t.Errorf("New with a negative DialTimeout = %v", err)
	}
	_, reg := newProxy(t, Config{})
	if _, err := New(Config{Registerer: reg}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("second Proxy on one registry = %v", err)
	}
}

// Close ends open connections and leaves no goroutine behind; Sync after Close fails.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	a := startServer(t, "a")
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := tcpEntry(t, "web", healthy(a.addr()))
	u := Entry{Key: Key{Protocol: UDP, VIP: vip, Port: freePort(t, UDP)}, Service: "web", Endpoints: []Endpoint{healthy(startUDPServer(t, "u").LocalAddr().String())}}
	if err := p.Sync(Table{e, u}); err != nil {
		t.Fatal(err)
	}
	var open []*client
	for range 5 {
		open = append(open, connect(t, e.Key))
	}
	udpRoundTrip(t, dialUDP(t), "ping", u.Key)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range open {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c.r); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("an open connection survived Close: %v", err)
		}
		c.Close()
	}
	if err := p.Sync(Table{e}); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close = %v", err)
	}
	a.close()
	closeUDPServers(t)
	eventually(t, "goroutines back to the count before the test", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// Shutdown stops accepting at once but lets an open connection finish.
func TestShutdownDrains(t *testing.T) {
	a := startServer(t, "a")
	p, _ := newProxy(t, Config{})
	e := tcpEntry(t, "web", healthy(a.addr()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, e.Key)
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(context.Background()) }()
	eventually(t, "the listener to close", func() bool {
		l, err := net.DialTimeout("tcp", netip.AddrPortFrom(e.VIP, e.Port).String(), time.Second)
		if err == nil {
			l.Close()
		}
		return err != nil
	})
	c.roundTrip(t, "still open during shutdown")
	if err := p.Sync(Table{e}); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync during Shutdown = %v, want ErrClosed (no listener may reopen)", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a connection open", err)
	default:
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	// A deadline that passes closes what is left.
	p2, _ := newProxy(t, Config{})
	e2 := tcpEntry(t, "web", healthy(a.addr()))
	if err := p2.Sync(Table{e2}); err != nil {
		t.Fatal(err)
	}
	c2 := connect(t, e2.Key)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown past its deadline = %v", err)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c2.r); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection not closed by Shutdown's deadline")
	}
}

// Many clients while the endpoint list churns: every connection is served, and every count
// returns to zero.
func TestTCPConcurrentChurn(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	p, reg := newProxy(t, Config{})
	e := tcpEntry(t, "web", healthy(a.addr()), healthy(b.addr()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	lists := [][]Endpoint{{healthy(a.addr())}, {healthy(b.addr())}, {healthy(a.addr()), healthy(b.addr())}}
	stop := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.Endpoints = lists[i%len(lists)]
			if err := p.Sync(Table{e}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	errs := make(chan error, 400)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				c, err := net.DialTimeout("tcp", netip.AddrPortFrom(e.VIP, e.Port).String(), 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				msg := fmt.Sprintf("g%d-%d\n", g, i)
				io.WriteString(c, msg)
				c.(*net.TCPConn).CloseWrite()
				got, err := io.ReadAll(c)
				c.Close()
				if err != nil || !strings.HasSuffix(string(got), "\n"+msg+"bye\n") {
					errs <- fmt.Errorf("connection %d/%d: %q, %v", g, i, got, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-churned
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	l := []string{"service", "web", "port", strconv.Itoa(int(e.Port)), "protocol", "tcp"}
	eventually(t, "every count back to 0", func() bool {
		for _, ep := range p.Snapshot()[0].Endpoints {
			if ep.Active != 0 {
				return false
			}
		}
		return metric(t, reg, "constellation_mesh_active_connections", l...) == 0
	})
	if got := metric(t, reg, "constellation_mesh_connections_total", l...); got != 400 {
		t.Errorf("connections_total = %v, want 400", got)
	}
}

// An IPv6 virtual IP works like an IPv4 one.
func TestTCPIPv6(t *testing.T) {
	a := startServer(t, "a")
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	p, _ := newProxy(t, Config{})
	k := Key{Protocol: TCP, VIP: netip.IPv6Loopback(), Port: port}
	if err := p.Sync(Table{{Key: k, Service: "web", Endpoints: []Endpoint{healthy(a.addr())}}}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, k)
	c.roundTrip(t, "over v6")
}
