package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func mustRange(t *testing.T, cidr string) Range {
	t.Helper()
	r, err := NewRange(netip.MustParsePrefix(cidr))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// holds builds Addresses: the Service's address, then replica 0, 1, ... ("" skips one).
func holds(svc string, replicas ...string) Addresses {
	a := Addresses{Replicas: map[int32]netip.Addr{}}
	if svc != "" {
		a.Service = ip(svc)
	}
	for i, r := range replicas {
		if r != "" {
			a.Replicas[int32(i)] = ip(r)
		}
	}
	return a
}

// all lists every address a Result holds, the Service's first.
func all(a Addresses) []netip.Addr {
	var out []netip.Addr
	a.each(func(_ int32, x netip.Addr) { out = append(out, x) })
	return out
}

func TestRangeNeverHandsOutNetworkFirstOrBroadcast(t *testing.T) {
	for _, tc := range []struct {
		cidr        string
		size        int
		first, last string
	}{
		{"10.213.0.0/16", 65533, "10.213.0.2", "10.213.255.254"},
		{"10.0.0.0/24", 253, "10.0.0.2", "10.0.0.254"},
		{"10.0.0.0/29", 5, "10.0.0.2", "10.0.0.6"},
		{"10.0.0.0/30", 1, "10.0.0.2", "10.0.0.2"},
		{"10.9.9.9/24", 253, "10.9.9.2", "10.9.9.254"}, // host bits are masked off
	} {
		r := mustRange(t, tc.cidr)
		if r.Size() != tc.size {
			t.Errorf("%s: size %d, want %d", tc.cidr, r.Size(), tc.size)
		}
		if got := r.at(0); got != ip(tc.first) {
			t.Errorf("%s: first allocatable %s, want %s", tc.cidr, got, tc.first)
		}
		if got := r.at(r.size - 1); got != ip(tc.last) {
			t.Errorf("%s: last allocatable %s, want %s", tc.cidr, got, tc.last)
		}
		net := r.Prefix().Addr()
		for _, reserved := range []netip.Addr{net, net.Next(), ip(tc.last).Next()} {
			if r.Contains(reserved) {
				t.Errorf("%s: %s must not be allocatable", tc.cidr, reserved)
			}
		}
	}
	for _, bad := range []string{"10.0.0.0/31", "10.0.0.0/32", "fd00::/64", "0.0.0.0/0"} {
		if _, err := NewRange(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("NewRange(%s): no error", bad)
		}
	}

	// Filling a /29 completely hands out exactly .2 to .6.
	r := mustRange(t, "10.0.0.0/29")
	res, err := NewTable(nil).Allocate(r, Holder{Name: "web", UID: "u1"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]bool{}
	for _, a := range all(res.Addresses) {
		got[a] = true
	}
	for _, want := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"} {
		if !got[ip(want)] {
			t.Errorf("a full /29 should hold %s, got %v", want, all(res.Addresses))
		}
	}
}

func TestAllocate(t *testing.T) {
	r24 := mustRange(t, "10.0.0.0/24")
	for _, tc := range []struct {
		name     string
		r        Range
		others   []Holder
		h        Holder
		replicas int32
		// check is called with the result
		check func(t *testing.T, res Result)
		err   string
	}{{
		name: "new service gets one address per replica, all distinct and in range",
		r:    r24, h: Holder{Name: "web", UID: "u-web"}, replicas: 3,
		check: func(t *testing.T, res Result) {
			as := all(res.Addresses)
			if len(as) != 4 || res.Allocated != 4 || !res.Addresses.Service.IsValid() || len(res.Addresses.Replicas) != 3 {
				t.Fatalf("want a service address and 3 replica addresses, got %+v", res)
			}
			seen := map[netip.Addr]bool{}
			for _, a := range as {
				if !r24.Contains(a) || seen[a] {
					t.Errorf("address %s out of range or repeated in %v", a, as)
				}
				seen[a] = true
			}
		},
	}, {
		name: "addresses other services hold are never handed out",
		r:    mustRange(t, "10.0.0.0/29"),
		others: []Holder{
			{Name: "a", Created: t0, Held: holds("10.0.0.2", "10.0.0.3")},
			{Name: "b", Created: t0, Held: holds("10.0.0.5", "", "10.0.0.6")}, // replica 0 unallocated
		},
		h: Holder{Name: "web", UID: "u-web"}, replicas: 0,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service != ip("10.0.0.4") {
				t.Errorf("the only free address is 10.0.0.4, got %s", res.Addresses.Service)
			}
		},
	}, {
		name: "what the service holds is kept, only what is missing is allocated",
		r:    r24, h: Holder{Name: "web", UID: "u-web", Held: holds("10.0.0.7", "10.0.0.8")}, replicas: 2,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service != ip("10.0.0.7") || res.Addresses.Replicas[0] != ip("10.0.0.8") {
				t.Errorf("held addresses changed: %+v", res.Addresses)
			}
			if res.Allocated != 1 || !res.Addresses.Replicas[1].IsValid() {
				t.Errorf("replica 1 should get a new address (allocated %d): %+v", res.Allocated, res.Addresses)
			}
		},
	}, {
		name: "scaling down keeps the removed indices' addresses",
		r:    r24, h: Holder{Name: "web", UID: "u", Held: holds("10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10")}, replicas: 1,
		check: func(t *testing.T, res Result) {
			if !res.Addresses.Equal(holds("10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10")) || res.Allocated != 0 {
				t.Errorf("scale down changed addresses: %+v", res)
			}
		},
	}, {
		name: "exhaustion names the CIDR and how many are in use, and allocates nothing",
		r:    mustRange(t, "10.0.0.0/29"),
		others: []Holder{
			{Name: "a", Created: t0, Held: holds("10.0.0.2", "10.0.0.3", "10.0.0.4")},
		},
		h: Holder{Name: "web", UID: "u-web", Held: holds("10.0.0.5")}, replicas: 2,
		err: "no free address in 10.0.0.0/29 for services/web: 4 of 5 addresses in use, 2 more needed",
	}, {
		name: "a /30 has room for one",
		r:    mustRange(t, "10.0.0.0/30"),
		others: []Holder{
			{Name: "a", Created: t0, Held: holds("10.0.0.2")},
		},
		h: Holder{Name: "web"}, replicas: 0,
		err: "10.0.0.0/30 for services/web: 1 of 1 addresses in use, 1 more needed",
	}, {
		name: "a changed CIDR keeps the addresses outside it and reports them; new ones come from the new CIDR",
		r:    mustRange(t, "10.214.0.0/24"),
		h:    Holder{Name: "web", UID: "u", Held: holds("10.213.0.9", "10.213.0.10")}, replicas: 2,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service != ip("10.213.0.9") || res.Addresses.Replicas[0] != ip("10.213.0.10") {
				t.Errorf("addresses outside the new CIDR were renumbered: %+v", res.Addresses)
			}
			if len(res.Outside) != 2 || res.Outside[0] != ip("10.213.0.9") || res.Outside[1] != ip("10.213.0.10") {
				t.Errorf("Outside = %v, want both old addresses reported", res.Outside)
			}
			if a := res.Addresses.Replicas[1]; !mustRange(t, "10.214.0.0/24").Contains(a) {
				t.Errorf("new replica address %s should come from the new CIDR", a)
			}
		},
	}, {
		name: "of two services holding one address the older keeps it, the younger is renumbered",
		r:    r24,
		others: []Holder{
			{Name: "old", Created: t0, Held: holds("10.0.0.5")},
		},
		h: Holder{Name: "young", UID: "u", Created: t0.Add(time.Minute), Held: holds("10.0.0.5", "10.0.0.6")}, replicas: 1,
		check: func(t *testing.T, res Result) {
			if a := res.Addresses.Service; a == ip("10.0.0.5") || !a.IsValid() {
				t.Errorf("the younger service kept the shared address: %s", a)
			}
			if res.Addresses.Replicas[0] != ip("10.0.0.6") {
				t.Errorf("an unshared address was changed: %+v", res.Addresses)
			}
			if len(res.Dropped) != 1 || res.Dropped[0] != (Dropped{Index: -1, Addr: ip("10.0.0.5"), HeldBy: "old"}) {
				t.Errorf("Dropped = %+v", res.Dropped)
			}
		},
	}, {
		name: "the older of two holders keeps its address (the younger moves when it is reconciled)",
		r:    r24,
		others: []Holder{
			{Name: "young", Created: t0.Add(time.Minute), Held: holds("10.0.0.5")},
		},
		h: Holder{Name: "old", UID: "u", Created: t0, Held: holds("10.0.0.5")}, replicas: 0,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service != ip("10.0.0.5") || len(res.Dropped) != 0 || res.Allocated != 0 {
				t.Errorf("the older service lost its address: %+v", res)
			}
		},
	}, {
		name: "created at the same time: the name decides",
		r:    r24,
		others: []Holder{
			{Name: "a", Created: t0, Held: holds("10.0.0.5")},
		},
		h: Holder{Name: "b", UID: "u", Created: t0, Held: holds("10.0.0.5")}, replicas: 0,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service == ip("10.0.0.5") {
				t.Errorf("b should yield to a: %+v", res)
			}
		},
	}, {
		name: "one address held twice by the same service is kept once",
		r:    r24, h: Holder{Name: "web", UID: "u", Held: holds("10.0.0.5", "10.0.0.5")}, replicas: 1,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service != ip("10.0.0.5") || res.Addresses.Replicas[0] == ip("10.0.0.5") || res.Allocated != 1 {
				t.Errorf("want the service to keep 10.0.0.5 and replica 0 a new one: %+v", res)
			}
		},
	}, {
		name: "the table's entry for the service itself is ignored",
		r:    mustRange(t, "10.0.0.0/30"),
		others: []Holder{
			{Name: "web", Created: t0, Held: holds("10.0.0.2")}, // a stale view of web itself
		},
		h: Holder{Name: "web", UID: "u"}, replicas: 0,
		check: func(t *testing.T, res Result) {
			if res.Addresses.Service != ip("10.0.0.2") {
				t.Errorf("got %+v", res.Addresses)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := NewTable(tc.others).Allocate(tc.r, tc.h, tc.replicas)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrExhausted saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range all(res.Addresses) {
				for _, o := range tc.others {
					if o.Name == tc.h.Name {
						continue
					}
					for _, b := range all(o.Held) {
						if a == b && !tc.h.precedes(o) {
							t.Errorf("%s is held by %s, handed to %s", a, o.Name, tc.h.Name)
						}
					}
				}
			}
			tc.check(t, res)
		})
	}
}

func TestAllocateIsDeterministic(t *testing.T) {
	r := mustRange(t, "10.213.0.0/16")
	others := []Holder{
		{Name: "a", Created: t0, Held: holds("10.213.0.2", "10.213.0.3")},
		{Name: "b", Created: t0, Held: holds("10.213.7.7")},
		{Name: "c", Created: t0, Held: holds("10.213.200.1", "10.213.200.2", "10.213.200.3")},
	}
	reversed := []Holder{others[2], others[1], others[0]}
	h := Holder{Name: "web", UID: "6f1c2b9e", Created: t0}
	first, err := NewTable(others).Allocate(r, h, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		tbl := others
		if i%2 == 1 {
			tbl = reversed
		}
		again, err := NewTable(tbl).Allocate(r, h, 5)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Addresses.Equal(first.Addresses) {
			t.Fatalf("run %d: %v, first run %v", i, all(again.Addresses), all(first.Addresses))
		}
	}
	// A Service whose status lost its addresses gets the same ones back while they are free.
	lost, _ := NewTable(others).Allocate(r, Holder{Name: "web", UID: "6f1c2b9e", Created: t0}, 5)
	if !lost.Addresses.Equal(first.Addresses) {
		t.Errorf("a re-allocation for the same uid differs: %v vs %v", all(lost.Addresses), all(first.Addresses))
	}
	// Another uid (the Service deleted and created again) looks elsewhere.
	other, _ := NewTable(others).Allocate(r, Holder{Name: "web", UID: "0a7d3c11", Created: t0}, 5)
	if other.Addresses.Service == first.Addresses.Service {
		t.Errorf("a new uid got the old uid's address %s (a freed address should not be next)", first.Addresses.Service)
	}
}

// A restarted controller reads the addresses from status and allocates nothing new.
func TestAllocateAfterRestartKeepsEverything(t *testing.T) {
	r := mustRange(t, "10.0.0.0/24")
	var holders []Holder
	for i, name := range []string{"api", "db", "web", "worker"} {
		h := Holder{Name: name, UID: "uid-" + name, Created: t0.Add(time.Duration(i) * time.Second)}
		res, err := NewTable(holders).Allocate(r, h, int32(i+1))
		if err != nil {
			t.Fatal(err)
		}
		h.Held = res.Addresses
		holders = append(holders, h)
	}
	// Round trip through status, as the store keeps it.
	restarted := make([]Holder, len(holders))
	for i, h := range holders {
		var st v1.ServiceStatus
		ToStatus(h.Held, &st)
		held, bad := FromStatus(&st)
		if len(bad) > 0 {
			t.Fatal(bad)
		}
		restarted[i] = Holder{Name: h.Name, UID: h.UID, Created: h.Created, Held: held}
	}
	tbl := NewTable(restarted)
	for i, h := range restarted {
		res, err := tbl.Allocate(r, h, int32(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Allocated != 0 || !res.Addresses.Equal(holders[i].Held) || len(res.Dropped) != 0 {
			t.Errorf("%s after restart: %+v, want %v unchanged", h.Name, res, all(holders[i].Held))
		}
	}
}

func TestStatusRoundTrip(t *testing.T) {
	st := v1.ServiceStatus{VirtualIP: "10.213.0.9", ReplicaVirtualIPs: []v1.ReplicaVirtualIP{
		{Index: 2, IP: "10.213.0.12"}, {Index: 0, IP: "10.213.0.10"}, {Index: 1, IP: "nope"},
		{Index: 0, IP: "10.213.0.11"}, {Index: -1, IP: "10.213.0.13"}, {Index: 3, IP: "fd00::1"},
	}}
	a, bad := FromStatus(&st)
	if !a.Equal(Addresses{Service: ip("10.213.0.9"), Replicas: map[int32]netip.Addr{0: ip("10.213.0.10"), 2: ip("10.213.0.12")}}) {
		t.Errorf("FromStatus = %+v", a)
	}
	want := []string{`status.replicaVirtualIPs[2].ip: "nope"`, `status.replicaVirtualIPs[3].index: 0`,
		`status.replicaVirtualIPs[4].index: -1`, `status.replicaVirtualIPs[5].ip: "fd00::1"`}
	if strings.Join(bad, "|") != strings.Join(want, "|") {
		t.Errorf("bad = %q, want %q", bad, want)
	}
	var out v1.ServiceStatus
	ToStatus(a, &out)
	if out.VirtualIP != "10.213.0.9" || len(out.ReplicaVirtualIPs) != 2 || out.ReplicaVirtualIPs[0] != (v1.ReplicaVirtualIP{Index: 0, IP: "10.213.0.10"}) {
		t.Errorf("ToStatus = %+v (want replicas sorted by index)", out)
	}
	if _, bad := FromStatus(&v1.ServiceStatus{VirtualIP: "x"}); len(bad) != 1 || bad[0] != `status.virtualIP: "x"` {
		t.Errorf("bad virtualIP: %q", bad)
	}
}
