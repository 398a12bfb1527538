package proxy

import (
	"net/netip"
	"testing"
)

// An address on no interface (TEST-NET-1) opens with FreeBindListenConfig and fails without.
func TestFreeBind(t *testing.T) {
	k := Key{Protocol: TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: freePort(t, TCP)}
	u := Key{Protocol: UDP, VIP: k.VIP, Port: k.Port}
	plain, _ := newProxy(t, Config{})
	if err := plain.Sync(Table{{Key: k, Service: "web"}}); err == nil {
		t.Fatal("a listener on an address on no interface opened without IP_FREEBIND; the test proves nothing here")
	}
	fb, _ := newProxy(t, Config{ListenConfig: FreeBindListenConfig()})
	if err := fb.Sync(Table{{Key: k, Service: "web"}, {Key: u, Service: "web"}}); err != nil {
		t.Fatalf("Sync with IP_FREEBIND: %v", err)
	}
	if n := len(fb.Snapshot()); n != 2 {
		t.Fatalf("%d listeners open, want 2", n)
	}
}
