package dns

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Domain is the mesh's DNS domain. Names under it are answered from the Table only (an unknown
// one is NXDOMAIN, never forwarded).
const Domain = "constellation.internal"

// Service is what the Table needs of a Service: its name and the virtual IPs of the Service and
// of each replica index. An invalid (zero) address means "not allocated yet": the name exists
// but has no address record (NODATA), so that clients do not cache a negative answer for long.
type Service struct {
	Name     string
	VIP      netip.Addr
	Replicas map[int]netip.Addr
}

// ReplicaSet is what the Table needs of a ReplicaSet: its name and the virtual IP of the member
// replica that is primary now. A zero Primary (no primary known yet) makes <rs>-primary exist
// with no address (NODATA).
type ReplicaSet struct {
	Name    string
	Primary netip.Addr
}

// Kind says how a query name is answered.
type Kind uint8

const (
	// Forward: not a mesh name; ask the upstream resolvers.
	Forward Kind = iota
	// Address: a mesh name with Answer.Addr.
	Address
	// NoData: a mesh name without an address (not allocated yet, or the domain apex).
	NoData
	// NXDomain: a name under the mesh domain (or shaped like a replica name of a known Service)
	// that does not exist.
	NXDomain
)

func (k Kind) String() string {
	switch k {
	case Forward:
		return "forward"
	case Address:
		return "address"
	case NoData:
		return "nodata"
	case NXDomain:
		return "nxdomain"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Answer is the Table's verdict on one query name.
type Answer struct {
	Kind Kind
	Addr netip.Addr // valid only when Kind is Address
}

// Table maps mesh names to virtual IPs. It is immutable once built; build a new one and swap it
// in with Server.SetTable when Services or ReplicaSets change.
type Table struct {
	// names holds names relative to Domain ("web", "web-0.web", "db-primary"), lowercase.
	// An invalid address means the name exists without an address.
	names map[string]netip.Addr
	// services holds the Service names, for the NXDOMAIN rule of bare replica-shaped names.
	services map[string]bool
	problems []string
}

// NewTable builds a Table. Names are lowercased. Conflicts are resolved, never fatal, and
// reported by Problems: a Service name that is not a DNS label is skipped; of two Services with
// the same name the first wins; a Service named like a ReplicaSet's "<rs>-primary" wins over the
// ReplicaSet's name (a Service's own name is the more specific promise).
func NewTable(services []Service, sets []ReplicaSet) *Table {
	t := &Table{names: map[string]netip.Addr{}, services: map[string]bool{}}
	for _, svc := range services {
		name := lowerASCII(svc.Name)
		if !isLabel(name) {
			t.problems = append(t.problems, fmt.Sprintf("services/%s: name is not a DNS label; no mesh name", svc.Name))
			continue
		}
		if t.services[name] {
			t.problems = append(t.problems, fmt.Sprintf("services/%s: duplicate Service name; the first one keeps the name", svc.Name))
			continue
		}
		t.services[name] = true
		t.names[name] = svc.VIP
		for i, vip := range svc.Replicas {
			if i < 0 {
				t.problems = append(t.problems, fmt.Sprintf("services/%s: replica index %d is negative; no mesh name", svc.Name, i))
				continue
			}
			t.names[replicaName(name, i)] = vip
		}
	}
	for _, rs := range sets {
		name := lowerASCII(rs.Name)
		if !isLabel(name) || !isLabel(name+"-primary") {
			t.problems = append(t.problems, fmt.Sprintf("replicasets/%s: %s-primary is not a DNS label; no mesh name", rs.Name, rs.Name))
			continue
		}
		primary := name + "-primary"
		if _, taken := t.names[primary]; taken {
			if t.services[primary] {
				t.problems = append(t.problems, fmt.Sprintf("replicasets/%s: %s is also a Service's name; the Service keeps it", rs.Name, primary))
			} else {
				t.problems = append(t.problems, fmt.Sprintf("replicasets/%s: duplicate ReplicaSet name; the first one keeps %s", rs.Name, primary))
			}
			continue
		}
		t.names[primary] = rs.Primary
	}
	sort.Strings(t.problems)
	return t
}

// Problems lists, sorted, what NewTable skipped and why (for the caller to log).
func (t *Table) Problems() []string { return append([]string(nil), t.problems...) }

// Len is the number of mesh names (relative to Domain) in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.names)
}

// Lookup answers one query name: case-insensitive, with or without the trailing dot, with or
// without the mesh domain.
//
//   - Under Domain: a known name → Address (or NoData); the apex → NoData; anything else →
//     NXDomain. Mesh-domain names are never forwarded.
//   - Without the domain: a known name (<svc>, <svc>-<i>.<svc>, <rs>-primary) → Address (or
//     NoData), even if the same name exists upstream: the mesh wins. A name shaped like
//     <svc>-<i>.<svc> for a known Service but an unknown index → NXDomain. Anything else →
//     Forward.
//
// A nil Table knows no names: the domain is NXDOMAIN, everything else is forwarded.
func (t *Table) Lookup(qname string) Answer {
	name := lowerASCII(strings.TrimSuffix(qname, "."))
	if name == "" {
		return Answer{Kind: Forward}
	}
	if name == Domain {
		return Answer{Kind: NoData}
	}
	if rel, ok := strings.CutSuffix(name, "."+Domain); ok {
		if a, ok := t.find(rel); ok {
			return a
		}
		return Answer{Kind: NXDomain}
	}
	if a, ok := t.find(name); ok {
		return a
	}
	if t.replicaShaped(name) {
		return Answer{Kind: NXDomain}
	}
	return Answer{Kind: Forward}
}

func (t *Table) find(rel string) (Answer, bool) {
	if t == nil {
		return Answer{}, false
	}
	addr, ok := t.names[rel]
	switch {
	case !ok:
		return Answer{}, false
	case addr.IsValid():
		return Answer{Kind: Address, Addr: addr}, true
	default:
		return Answer{Kind: NoData}, true
	}
}

// replicaShaped reports whether name is "<svc>-<digits>.<svc>" for a known Service.
func (t *Table) replicaShaped(name string) bool {
	if t == nil {
		return false
	}
	first, svc, ok := strings.Cut(name, ".")
	if !ok || !t.services[svc] {
		return false
	}
	idx, ok := strings.CutPrefix(first, svc+"-")
	if !ok || idx == "" {
		return false
	}
	for _, c := range idx {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func replicaName(svc string, i int) string { return svc + "-" + strconv.Itoa(i) + "." + svc }

// lowerASCII lowercases A-Z only: DNS names compare case-insensitively in ASCII (RFC 4343), and
// strings.ToLower would fold non-ASCII letters (the Kelvin sign into k) into mesh names.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isLabel reports whether s is a lowercase RFC 1123 label (what api/v1 accepts as a name).
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
