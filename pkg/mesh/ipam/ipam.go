package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// ErrExhausted is returned when a range has fewer free addresses than a Service needs.
var ErrExhausted = errors.New("ipam: no free address")

// Range is the allocatable part of an IPv4 prefix: every address except the network address,
// the first host address (reserved) and the broadcast address.
type Range struct {
	prefix netip.Prefix
	base   uint32 // the first allocatable address (network + 2)
	size   uint32 // how many there are
}

// NewRange returns the range of p, an IPv4 prefix of /1 to /30 (a /30 has one allocatable
// address; small ranges are for tests). The agent's --mesh.cidr is /8 to /24 (pkg/config).
func NewRange(p netip.Prefix) (Range, error) {
	if !p.IsValid() || !p.Addr().Is4() {
		return Range{}, fmt.Errorf("ipam: %s is not an IPv4 prefix", p)
	}
	if p.Bits() > 30 || p.Bits() < 1 {
		return Range{}, fmt.Errorf("ipam: %s: the prefix length must be /1 to /30", p)
	}
	p = p.Masked()
	total := uint64(1) << (32 - p.Bits())
	return Range{prefix: p, base: u32(p.Addr()) + 2, size: uint32(total - 3)}, nil
}

// Prefix is the range's CIDR.
func (r Range) Prefix() netip.Prefix { return r.prefix }

// Size is how many addresses the range can hand out.
func (r Range) Size() int { return int(r.size) }

// Contains reports whether a is one the range hands out.
func (r Range) Contains(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	v := u32(a)
	return v >= r.base && v-r.base < r.size
}

func (r Range) at(off uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], r.base+off)
	return netip.AddrFrom4(b)
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

// Addresses are what one Service holds.
type Addresses struct {
	// Service is the Service's virtual IP; the zero Addr when it has none.
	Service netip.Addr
	// Replicas maps a replica index to its address.
	Replicas map[int32]netip.Addr
}

// Count is how many addresses a holds.
func (a Addresses) Count() int {
	n := len(a.Replicas)
	if a.Service.IsValid() {
		n++
	}
	return n
}

// each calls f for every address, the Service's first, then by index.
func (a Addresses) each(f func(index int32, addr netip.Addr)) {
	if a.Service.IsValid() {
		f(-1, a.Service)
	}
	for _, i := range sortedIndices(a.Replicas) {
		f(i, a.Replicas[i])
	}
}

func sortedIndices(m map[int32]netip.Addr) []int32 {
	out := make([]int32, 0, len(m))
	for i := range m {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// All lists every address a holds: the Service's first, then the replicas' by index.
func (a Addresses) All() []netip.Addr {
	var out []netip.Addr
	a.each(func(_ int32, x netip.Addr) { out = append(out, x) })
	return out
}

// Equal reports whether a and b hold the same addresses.
func (a Addresses) Equal(b Addresses) bool {
	if a.Service != b.Service || len(a.Replicas) != len(b.Replicas) {
		return false
	}
	for i, x := range a.Replicas {
		if y, ok := b.Replicas[i]; !ok || x != y {
			return false
		}
	}
	return true
}

// Holder is one Service and what it holds.
type Holder struct {
	Name string
	// UID seeds where new addresses are looked for. Empty: Name does.
	UID     string
	Created time.Time
	Held    Addresses
}

// precedes reports whether h keeps an address it shares with o: the older Service does, and
// of two created at once the one whose name sorts first.
func (h Holder) precedes(o Holder) bool {
	if !h.Created.Equal(o.Created) {
		return h.Created.Before(o.Created)
	}
	return h.Name < o.Name
}

// Table is every address held by every Service, by address.
type Table struct {
	owners map[netip.Addr][]Holder
}

// NewTable indexes holders. A Service listed twice counts twice: pass each once.
func NewTable(holders []Holder) *Table {
	t := &Table{owners: map[netip.Addr][]Holder{}}
	for _, h := range holders {
		seen := map[netip.Addr]bool{}
		h.Held.each(func(_ int32, a netip.Addr) {
			if !seen[a] {
				seen[a] = true
				t.owners[a] = append(t.owners[a], h)
			}
		})
	}
	return t
}

// Dropped is an address a Service held and loses, and why.
type Dropped struct {
	// Index is the replica index, or -1 for the Service's own address.
	Index int32
	Addr  netip.Addr
	// HeldBy names the Service that keeps it.
	HeldBy string
}

// Result is what a Service should hold.
type Result struct {
	Addresses Addresses
	// Allocated counts the new addresses in Addresses.
	Allocated int
	// Outside lists held addresses outside the range, kept (the range changed under them).
	Outside []netip.Addr
	// Dropped lists held addresses another Service keeps, replaced by new ones.
	Dropped []Dropped
}

// Allocate returns what h should hold in r: every address it holds that no older Service also
// holds, plus a new one for the Service if it has none and for every replica index in
// [0, replicas) without one. h.Held is whatever h holds now (the table's entry for h.Name, if
// any, is ignored: the caller's copy is the one to trust). Nothing is allocated when the range
// has too few free addresses for everything h needs: ErrExhausted, naming the range and how
// many addresses are in use.
func (t *Table) Allocate(r Range, h Holder, replicas int32) (Result, error) {
	taken := func(a netip.Addr) (Holder, bool) {
		var keeper Holder
		found := false
		for _, o := range t.owners[a] {
			if o.Name == h.Name {
				continue
			}
			if !found || o.precedes(keeper) {
				keeper, found = o, true
			}
		}
		return keeper, found
	}
	res := Result{Addresses: Addresses{Replicas: map[int32]netip.Addr{}}}
	mine := map[netip.Addr]bool{}
	keep := func(index int32, a netip.Addr) bool {
		if mine[a] { // h holds it twice: the first use keeps it
			res.Dropped = append(res.Dropped, Dropped{Index: index, Addr: a, HeldBy: h.Name})
			return false
		}
		if o, ok := taken(a); ok && o.precedes(h) {
			res.Dropped = append(res.Dropped, Dropped{Index: index, Addr: a, HeldBy: o.Name})
			return false
		}
		mine[a] = true
		if !r.Contains(a) {
			res.Outside = append(res.Outside, a)
		}
		return true
	}
	h.Held.each(func(index int32, a netip.Addr) {
		if !keep(index, a) {
			return
		}
		if index < 0 {
			res.Addresses.Service = a
		} else {
			res.Addresses.Replicas[index] = a
		}
	})

	// What is still missing.
	type want struct {
		index int32
		seed  string
	}
	seed := h.UID
	if seed == "" {
		seed = h.Name
	}
	var wants []want
	if !res.Addresses.Service.IsValid() {
		wants = append(wants, want{-1, seed})
	}
	for i := int32(0); i < replicas; i++ {
		if _, ok := res.Addresses.Replicas[i]; !ok {
			wants = append(wants, want{i, seed + "/" + strconv.Itoa(int(i))})
		}
	}
	if len(wants) == 0 {
		return res, nil
	}

	// In use in r: anything anyone else holds (whoever keeps it) and what h keeps.
	used := 0
	for a := range t.owners {
		if r.Contains(a) && !mine[a] {
			if _, ok := taken(a); ok {
				used++
			}
		}
	}
	for a := range mine {
		if r.Contains(a) {
			used++
		}
	}
	if free := int(r.size) - used; free < len(wants) {
		return Result{}, fmt.Errorf("%w in %s for services/%s: %d of %d addresses in use, %d more needed",
			ErrExhausted, r.prefix, h.Name, used, r.size, len(wants))
	}
	for _, w := range wants {
		a := r.probe(w.seed, func(a netip.Addr) bool {
			if mine[a] {
				return false
			}
			_, ok := taken(a)
			return !ok
		})
		mine[a] = true
		res.Allocated++
		if w.index < 0 {
			res.Addresses.Service = a
		} else {
			res.Addresses.Replicas[w.index] = a
		}
	}
	return res, nil
}

// probe returns the first address free accepts, looking from a hash of seed onwards (wrapping).
// The caller has made sure one exists.
func (r Range) probe(seed string, free func(netip.Addr) bool) netip.Addr {
	f := fnv.New64a()
	f.Write([]byte(seed))
	start := uint32(f.Sum64() % uint64(r.size))
	for i := uint32(0); i < r.size; i++ {
		a := r.at((start + i) % r.size)
		if free(a) {
			return a
		}
	}
	panic("ipam: probe found no free address after counting one") // a bug in Allocate
}

// FromStatus reads the addresses a Service's status records. Values that are not IPv4
// addresses are returned in bad (as "field: value") and otherwise ignored: they are replaced.
func FromStatus(st *v1.ServiceStatus) (a Addresses, bad []string) {
	a.Replicas = map[int32]netip.Addr{}
	if st.VirtualIP != "" {
		if ip, err := netip.ParseAddr(st.VirtualIP); err == nil && ip.Is4() {
			a.Service = ip
		} else {
			bad = append(bad, fmt.Sprintf("status.virtualIP: %q", st.VirtualIP))
		}
	}
	for i, r := range st.ReplicaVirtualIPs {
		ip, err := netip.ParseAddr(r.IP)
		_, dup := a.Replicas[r.Index]
		switch {
		case err != nil || !ip.Is4():
			bad = append(bad, fmt.Sprintf("status.replicaVirtualIPs[%d].ip: %q", i, r.IP))
		case r.Index < 0 || dup:
			bad = append(bad, fmt.Sprintf("status.replicaVirtualIPs[%d].index: %d", i, r.Index))
		default:
			a.Replicas[r.Index] = ip
		}
	}
	return a, bad
}

// ToStatus records a in st (replicas sorted by index).
func ToStatus(a Addresses, st *v1.ServiceStatus) {
	st.VirtualIP = ""
	if a.Service.IsValid() {
		st.VirtualIP = a.Service.String()
	}
	st.ReplicaVirtualIPs = nil
	for _, i := range sortedIndices(a.Replicas) {
		st.ReplicaVirtualIPs = append(st.ReplicaVirtualIPs, v1.ReplicaVirtualIP{Index: i, IP: a.Replicas[i].String()})
	}
}
