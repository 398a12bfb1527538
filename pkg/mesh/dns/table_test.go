package dns

import (
	"net/netip"
	"slices"
	"testing"
)

func testTable() *Table {
	return NewTable([]Service{
		{Name: "web", VIP: netip.MustParseAddr("10.213.0.1"), Replicas: map[int]netip.Addr{
			0: netip.MustParseAddr("10.213.0.2"),
			1: netip.MustParseAddr("10.213.0.3"),
		}},
		{Name: "Mongo", VIP: netip.MustParseAddr("10.213.0.10"), Replicas: map[int]netip.Addr{
			0: netip.MustParseAddr("10.213.0.11"),
			2: {}, // not allocated yet
		}},
		{Name: "pending"}, // no VIP yet
		{Name: "google", VIP: netip.MustParseAddr("10.213.0.20")},
		{Name: "com", VIP: netip.MustParseAddr("10.213.0.21")},
		{Name: "v6", VIP: netip.MustParseAddr("fd00::1")},
	}, []ReplicaSet{
		{Name: "rs0", Primary: netip.MustParseAddr("10.213.0.11")},
		{Name: "cache"}, // no primary yet
	})
}

func TestTableLookup(t *testing.T) {
	tab := testTable()
	addr := func(s string) Answer { return Answer{Kind: Address, Addr: netip.MustParseAddr(s)} }
	nodata := Answer{Kind: NoData}
	nx := Answer{Kind: NXDomain}
	fwd := Answer{Kind: Forward}
	tests := []struct {
		q    string
		want Answer
	}{
		// Service names, every spelling.
		{"web", addr("10.213.0.1")},
		{"web.", addr("10.213.0.1")},
		{"web.constellation.internal", addr("10.213.0.1")},
		{"web.constellation.internal.", addr("10.213.0.1")},
		{"WeB.Constellation.INTERNAL.", addr("10.213.0.1")},
		{"mongo", addr("10.213.0.10")}, // Service names are lowercased
		{"v6.constellation.internal.", addr("fd00::1")},
		// Replica names.
		{"web-0.web.", addr("10.213.0.2")},
		{"web-1.web.constellation.internal.", addr("10.213.0.3")},
		{"WEB-1.WEB.", addr("10.213.0.3")},
		{"mongo-0.mongo.", addr("10.213.0.11")},
		{"mongo-2.mongo.constellation.internal.", nodata}, // replica VIP not allocated
		{"web-2.web.", nx},                                // known Service, unknown index, bare
		{"web-2.web.constellation.internal.", nx},
		{"web-0.mongo.", fwd}, // not replica-shaped for mongo
		{"web-0.mongo.constellation.internal.", nx},
		{"web-0.", fwd},                       // one label, not a Service
		{"web-0.constellation.internal.", nx}, // replica names have two labels
		{"a.web-0.web.constellation.internal.", nx},
		// ReplicaSet primaries.
		{"rs0-primary.", addr("10.213.0.11")},
		{"rs0-primary.constellation.internal.", addr("10.213.0.11")},
		{"cache-primary.constellation.internal.", nodata},
		{"rs0.constellation.internal.", nx}, // the ReplicaSet itself has no name
		{"rs0.", fwd},
		// Names without an address yet.
		{"pending.", nodata},
		{"pending.constellation.internal.", nodata},
		// The apex and unknown names in the domain.
		{"constellation.internal.", nodata},
		{"CONSTELLATION.internal", nodata},
		{"nope.constellation.internal.", nx},
		{"x.y.constellation.internal.", nx},
		// The mesh wins over real host names with the same spelling.
		{"google.", addr("10.213.0.20")},
		{"com.", addr("10.213.0.21")},
		// Everything else is forwarded.
		{"google.com.", fwd},
		{"www.example.org", fwd},
		{"com-1.com.", nx}, // replica-shaped for Service "com": ours
		{"internal.", fwd},
		{"xconstellation.internal.", fwd},
		{".", fwd},
		{"", fwd},
		{"nope.", fwd},
		{"web\\.constellation.internal.", nx}, // an escaped dot is not a label separator, but the name is still in the domain
	}
	for _, tt := range tests {
		if got := tab.Lookup(tt.q); got != tt.want {
			t.Errorf("Lookup(%q) = %v %v, want %v %v", tt.q, got.Kind, got.Addr, tt.want.Kind, tt.want.Addr)
		}
	}
}

func TestTableNil(t *testing.T) {
	var tab *Table
	for q, want := range map[string]Kind{
		"web.":                        Forward,
		"web.constellation.internal.": NXDomain,
		"constellation.internal.":     NoData,
		"web-0.web.":                  Forward,
		"example.com.":                Forward,
	} {
		if got := tab.Lookup(q); got.Kind != want {
			t.Errorf("nil Lookup(%q) = %v, want %v", q, got.Kind, want)
		}
	}
	if tab.Len() != 0 {
		t.Errorf("nil Len = %d", tab.Len())
	}
}

func TestTableConflicts(t *testing.T) {
	vip := netip.MustParseAddr
	tab := NewTable([]Service{
		{Name: "db-primary", VIP: vip("10.213.0.1")},
		{Name: "web", VIP: vip("10.213.0.2")},
		{Name: "web", VIP: vip("10.213.0.3")},
		{Name: "bad_name", VIP: vip("10.213.0.4")},
		{Name: "neg", VIP: vip("10.213.0.5"), Replicas: map[int]netip.Addr{-1: vip("10.213.0.6")}},
	}, []ReplicaSet{
		{Name: "db", Primary: vip("10.213.0.9")},
		{Name: "rs", Primary: vip("10.213.0.7")},
		{Name: "rs", Primary: vip("10.213.0.8")},
		{Name: "x23456789012345678901234567890123456789012345678901234567", Primary: vip("10.213.0.10")}, // -primary makes it 65 chars
	})
	checks := map[string]Answer{
		"db-primary.": {Kind: Address, Addr: vip("10.213.0.1")}, // the Service wins
		"web.":        {Kind: Address, Addr: vip("10.213.0.2")}, // the first wins
		"rs-primary.": {Kind: Address, Addr: vip("10.213.0.7")},
		"bad_name.":   {Kind: Forward},
		"neg.":        {Kind: Address, Addr: vip("10.213.0.5")},
	}
	for q, want := range checks {
		if got := tab.Lookup(q); got != want {
			t.Errorf("Lookup(%q) = %+v, want %+v", q, got, want)
		}
	}
	want := []string{
		"replicasets/db: db-primary is also a Service's name; the Service keeps it",
		"replicasets/rs: duplicate ReplicaSet name; the first one keeps rs-primary",
		"replicasets/x23456789012345678901234567890123456789012345678901234567: x23456789012345678901234567890123456789012345678901234567-primary is not a DNS label; no mesh name",
		"services/bad_name: name is not a DNS label; no mesh name",
		"services/neg: replica index -1 is negative; no mesh name",
		"services/web: duplicate Service name; the first one keeps the name",
	}
	if got := tab.Problems(); !slices.Equal(got, want) {
		t.Errorf("Problems =\n%q\nwant\n%q", got, want)
	}
	if got := tab.Len(); got != 4 { // db-primary, web, neg, rs-primary
		t.Errorf("Len = %d, want 4", got)
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{
		"abc": "abc", "ABC": "abc", "aBc.D": "abc.d", "\u212a": "\u212a", "WEB\u212a": "web\u212a", "": "",
	} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
}
