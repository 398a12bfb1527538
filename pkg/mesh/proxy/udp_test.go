package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	udpServersMu sync.Mutex
	udpServers   []net.PacketConn
)

// startUDPServer answers every datagram with "<name>:<datagram>".
func startUDPServer(t *testing.T, name string) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	udpServersMu.Lock()
	udpServers = append(udpServers, c)
	udpServersMu.Unlock()
	t.Cleanup(func() { c.Close() })
	return c
}

func closeUDPServers(t *testing.T) {
	udpServersMu.Lock()
	defer udpServersMu.Unlock()
	for _, c := range udpServers {
		c.Close()
	}
	udpServers = nil
}

func dialUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpRoundTrip sends msg to the VIP from c and returns the reply, checking it comes from the VIP.
func udpRoundTrip(t *testing.T, c *net.UDPConn, msg string, to Key) string {
	t.Helper()
	dst := netip.AddrPortFrom(to.VIP, to.Port)
	if _, err := c.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	if from != dst {
		t.Fatalf("reply from %s, want it from the VIP %s", from, dst)
	}
	return string(buf[:n])
}

func udpEntry(t *testing.T, service string, eps ...Endpoint) Entry {
	return Entry{Key: Key{Protocol: UDP, VIP: vip, Port: freePort(t, UDP)}, Service: service, Endpoints: eps}
}

func TestUDPEchoAndSessionExpiry(t *testing.T) {
	a := startUDPServer(t, "a")
	p, reg := newProxy(t, Config{UDPIdleTimeout: 200 * time.Millisecond})
	e := udpEntry(t, "dns", healthy(a.LocalAddr().String()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	c := dialUDP(t)
	for i := range 3 {
		if got := udpRoundTrip(t, c, "q"+strconv.Itoa(i), e.Key); got != "a:q"+strconv.Itoa(i) {
			t.Fatalf("reply %q", got)
		}
	}
	l := []string{"service", "dns", "port", strconv.Itoa(int(e.Port)), "protocol", "udp"}
	if got := metric(t, reg, "constellation_mesh_connections_total", l...); got != 1 {
		t.Errorf("sessions started = %v, want 1 (one client)", got)
	}
	// The reply reaches the client before the proxy counts its bytes: wait for the count.
	eventually(t, "the 12 bytes of the replies counted", func() bool {
		return metric(t, reg, "constellation_mesh_bytes_total", append(l, "direction", "out")...) >= 12
	})
	if got := metric(t, reg, "constellation_mesh_bytes_total", append(l, "direction", "out")...); got != 12 {
		t.Errorf("bytes out = %v, want 12", got)
	}
	eventually(t, "the idle session to expire", func() bool {
		return metric(t, reg, "constellation_mesh_active_connections", l...) == 0
	})
	if got := udpRoundTrip(t, c, "again", e.Key); got != "a:again" {
		t.Fatalf("reply after expiry %q", got)
	}
	if got := metric(t, reg, "constellation_mesh_connections_total", l...); got != 2 {
		t.Errorf("sessions started = %v, want 2 (a new one after expiry)", got)
	}
}

func TestUDPSessionsBoundedAndUnhealthySkipped(t *testing.T) {
	a, b := startUDPServer(t, "a"), startUDPServer(t, "b")
	p, reg := newProxy(t, Config{MaxUDPSessions: 1})
	e := udpEntry(t, "dns", Endpoint{Address: a.LocalAddr().String(), Local: true}, healthy(b.LocalAddr().String()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	c1 := dialUDP(t)
	if got := udpRoundTrip(t, c1, "x", e.Key); got != "b:x" {
		t.Fatalf("reply %q, want it from b (a is unhealthy)", got)
	}
	c2 := dialUDP(t)
	c2.WriteToUDPAddrPort([]byte("y"), netip.AddrPortFrom(e.VIP, e.Port))
	l := []string{"service", "dns", "port", strconv.Itoa(int(e.Port)), "protocol", "udp"}
	eventually(t, "the second client's datagram to be dropped", func() bool {
		return metric(t, reg, "constellation_mesh_udp_dropped_total", append(l, "reason", "sessions_full")...) == 1
	})
	// b turns unhealthy, a healthy: the open session ends and the next datagram goes to a.
	e.Endpoints = []Endpoint{healthy(a.LocalAddr().String()), {Address: b.LocalAddr().String()}}
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	if got := udpRoundTrip(t, c1, "z", e.Key); got != "a:z" {
		t.Fatalf("reply %q after b turned unhealthy, want a", got)
	}
}

// An endpoint that answers with ICMP port unreachable ends the session; the next datagram
// starts a new one on another endpoint.
func TestUDPRefusedEndpoint(t *testing.T) {
	b := startUDPServer(t, "b")
	deadConn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadConn.LocalAddr().String()
	deadConn.Close()
	p, reg := newProxy(t, Config{})
	e := udpEntry(t, "dns", Endpoint{Address: dead, Healthy: true, Local: true}, healthy(b.LocalAddr().String()))
	if err := p.Sync(Table{e}); err != nil {
		t.Fatal(err)
	}
	c := dialUDP(t)
	c.WriteToUDPAddrPort([]byte("lost"), netip.AddrPortFrom(e.VIP, e.Port))
	l := []string{"service", "dns", "port", strconv.Itoa(int(e.Port)), "protocol", "udp"}
	eventually(t, "the refused session to end", func() bool {
		return metric(t, reg, "constellation_mesh_connect_failures_total", l...) == 1 &&
			metric(t, reg, "constellation_mesh_active_connections", l...) == 0
	})
	if got := udpRoundTrip(t, c, "retry", e.Key); !strings.HasPrefix(got, "b:") {
		t.Fatalf("reply %q, want b", got)
	}
}
