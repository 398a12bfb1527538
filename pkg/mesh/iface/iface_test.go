package iface

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
)

type fakeLink struct {
	addrs  []netip.Addr
	failOn netip.Addr
}

func (f *fakeLink) Addrs() ([]netip.Addr, error) { return slices.Clone(f.addrs), nil }
func (f *fakeLink) Add(a netip.Addr) error {
	if a == f.failOn {
		return errors.New("refused")
	}
	f.addrs = append(f.addrs, a)
	return nil
}
func (f *fakeLink) Del(a netip.Addr) error {
	f.addrs = slices.DeleteFunc(f.addrs, func(x netip.Addr) bool { return x == a })
	return nil
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestSync(t *testing.T) {
	prefix := netip.MustParsePrefix("10.213.0.0/16")
	for _, tc := range []struct {
		name                   string
		have, want             []netip.Addr
		added, removed, result string
	}{
		{"from nothing", addrs("127.0.0.1"), addrs("10.213.0.9", "10.213.0.5"), "[10.213.0.5 10.213.0.9]", "[]", "[10.213.0.5 10.213.0.9 127.0.0.1]"},
		{"nothing to do", addrs("127.0.0.1", "10.213.0.5"), addrs("10.213.0.5"), "[]", "[]", "[10.213.0.5 127.0.0.1]"},
		{"stale removed, others kept", addrs("127.0.0.1", "10.213.0.5", "10.213.1.1", "192.168.7.7"), addrs("10.213.0.5"), "[]", "[10.213.1.1]", "[10.213.0.5 127.0.0.1 192.168.7.7]"},
		{"everything gone", addrs("127.0.0.1", "10.213.0.5"), nil, "[]", "[10.213.0.5]", "[127.0.0.1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeLink{addrs: tc.have}
			res, err := Sync(l, prefix, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res.Added) != tc.added || fmt.Sprint(orEmpty(res.Removed)) != tc.removed {
				t.Fatalf("added %v removed %v, want %s %s", res.Added, res.Removed, tc.added, tc.removed)
			}
			got := slices.Clone(l.addrs)
			slices.SortFunc(got, func(x, y netip.Addr) int { return x.Compare(y) })
			if fmt.Sprint(got) != tc.result {
				t.Fatalf("lo holds %v, want %s", got, tc.result)
			}
		})
	}
}

func orEmpty(a []netip.Addr) []netip.Addr {
	if a == nil {
		return []netip.Addr{}
	}
	return a
}

func TestSyncRefusesOutsidePrefixAndGoesOnAfterAFailure(t *testing.T) {
	prefix := netip.MustParsePrefix("10.213.0.0/16")
	l := &fakeLink{}
	if _, err := Sync(l, prefix, addrs("10.9.0.1")); err == nil || len(l.addrs) != 0 {
		t.Fatalf("an address outside the prefix: err %v, lo %v", err, l.addrs)
	}
	l.failOn = netip.MustParseAddr("10.213.0.2")
	res, err := Sync(l, prefix, addrs("10.213.0.2", "10.213.0.3"))
	if err == nil || fmt.Sprint(res.Added) != "[10.213.0.3]" {
		t.Fatalf("err %v, added %v: want the error and the other address added", err, res.Added)
	}
}

// The real loopback, through netlink: addresses of a test prefix come and go, nothing else is
// touched. Needs root (CAP_NET_ADMIN), as the agent does.
func TestLoopbackNetlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to change lo's addresses; CI runs as root")
	}
	lo, err := Loopback()
	if err != nil {
		t.Fatal(err)
	}
	prefix := netip.MustParsePrefix("198.18.254.0/24") // benchmarking range, unused here
	t.Cleanup(func() { _, _ = Sync(lo, prefix, nil) })
	before, err := lo.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(lo, prefix, addrs("198.18.254.7", "198.18.254.8")); err != nil {
		t.Fatal(err)
	}
	have, _ := lo.Addrs()
	for _, a := range addrs("198.18.254.7", "198.18.254.8") {
		if !slices.Contains(have, a) {
			t.Fatalf("%s not on lo: %v", a, have)
		}
	}
	// Adding twice is not an error.
	if err := lo.Add(netip.MustParseAddr("198.18.254.7")); err != nil {
		t.Fatalf("second add: %v", err)
	}
	if _, err := Sync(lo, prefix, addrs("198.18.254.8")); err != nil {
		t.Fatal(err)
	}
	have, _ = lo.Addrs()
	if slices.Contains(have, netip.MustParseAddr("198.18.254.7")) || !slices.Contains(have, netip.MustParseAddr("198.18.254.8")) {
		t.Fatalf("after the second sync lo holds %v", have)
	}
	if _, err := Sync(lo, prefix, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := lo.Addrs()
	if !slices.Equal(after, before) {
		t.Fatalf("lo before %v, after %v", before, after)
	}
}
