package dns

import (
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
)

// Plan is what to do in the provider so that the records owned at some names match the wanted
// ones. Records are provider records; Update entries carry the ID of the record to change.
type Plan struct {
	Create []cloudflare.Record
	Update []cloudflare.Record
	Delete []cloudflare.Record
	// Keep are owned records already as wanted.
	Keep []cloudflare.Record
	// Foreign are records not ours that stand in the way of a wanted record.
	Foreign []cloudflare.Record
	// Blocked are wanted records not created (or not updated to) because of Foreign.
	Blocked []cloudflare.Record
}

// Changes returns the number of provider writes the plan makes.
func (p Plan) Changes() int { return len(p.Create) + len(p.Update) + len(p.Delete) }

// Compute plans the changes turning observed into wanted, touching only records whose comment is
// owner. wanted records must carry owner as their comment. It is pure: same input, same plan.
//
// Owned records already as wanted are kept; an owned record of the right name and type but the
// wrong content is updated in place to a wanted content (one call, no gap, same id); the owned
// records left over are deleted, the wanted records left over created, unless a foreign record is
// in the way (then they are Blocked and the foreign record reported).
func Compute(wanted, observed []cloudflare.Record, owner string) Plan {
	var p Plan
	want := dedupe(normalizeAll(wanted))
	var owned, foreign []cloudflare.Record
	for _, r := range normalizeAll(observed) {
		if r.Comment == owner {
			owned = append(owned, r)
		} else {
			foreign = append(foreign, r)
		}
	}
	sortRecords(owned)

	// 1. Exact matches: keep, or fix TTL/proxied in place.
	var restWant []cloudflare.Record
	used := make([]bool, len(owned))
	for _, w := range want {
		i := find(owned, used, func(o cloudflare.Record) bool { return sameRRSet(o, w) && o.Content == w.Content })
		if i < 0 {
			restWant = append(restWant, w)
			continue
		}
		used[i] = true
		if owned[i].TTL == w.TTL && owned[i].Proxied == w.Proxied {
			p.Keep = append(p.Keep, owned[i])
		} else {
			w.ID = owned[i].ID
			p.Update = append(p.Update, w)
		}
	}
	// 2. Same name and type, other content: update in place (a foreign record next to ours does
	// not stop that: the name must follow its target), unless a foreign record already holds
	// that content (the API would refuse an identical record). Otherwise create, unless a
	// foreign record is in the way.
	var toCreate []cloudflare.Record
	for _, w := range restWant {
		i := find(owned, used, func(o cloudflare.Record) bool { return sameRRSet(o, w) })
		if i >= 0 {
			if f := identical(foreign, w); len(f) > 0 {
				p.Foreign = appendUnique(p.Foreign, f...)
				p.Blocked = append(p.Blocked, w)
				continue
			}
			used[i] = true
			w.ID = owned[i].ID
			p.Update = append(p.Update, w)
			continue
		}
		if f := inTheWay(foreign, w); len(f) > 0 {
			p.Foreign = appendUnique(p.Foreign, f...)
			p.Blocked = append(p.Blocked, w)
			continue
		}
		toCreate = append(toCreate, w)
	}
	// 3. Owned records left over go.
	for i, o := range owned {
		if !used[i] {
			p.Delete = append(p.Delete, o)
		}
	}
	p.Create = toCreate
	// Foreign records in the way of records we keep or update are reported too (a foreign A
	// next to ours makes the name answer both).
	for _, w := range append(append([]cloudflare.Record(nil), p.Keep...), p.Update...) {
		p.Foreign = appendUnique(p.Foreign, inTheWay(foreign, w)...)
	}
	sortRecords(p.Foreign)
	return p
}

// Brake reports what the disruption brake did to a per-node records plan.
type Brake struct {
	// Lost and Total: nodes that look lost (judged lost, or with a record but no Node object and
	// not in gossip) and nodes known in all.
	Lost, Total int
	// Held are the owned records the plan would have deleted and keeps instead.
	Held []cloudflare.Record
}

// On reports whether the brake held anything back.
func (b Brake) On() bool { return len(b.Held) > 0 }

// PlanNodeRecords plans the per-node records. Each node's record is owned through its own
// comment (ownerPrefix + node name); have is the whole zone. A node's record is deleted only
// when the node is lost (w.Keep does not hold it and no record is wanted for it): a node that
// is merely not seen keeps its record untouched. When more than half of the nodes look lost
// at once (braked), the plan deletes nothing at all and reports what it held back.
func PlanNodeRecords(w NodeRecordsWant, have []cloudflare.Record, ownerPrefix string) (Plan, Brake) {
	byOwner := map[string][]cloudflare.Record{}
	names := map[string]string{} // name → owner
	for _, r := range w.Records {
		byOwner[r.Comment] = append(byOwner[r.Comment], r)
		names[Normalize(r).Name] = r.Comment
	}
	brake := Brake{Lost: w.Lost, Total: len(w.Known)}
	for _, h := range have {
		if !strings.HasPrefix(h.Comment, ownerPrefix) {
			continue
		}
		if _, ok := byOwner[h.Comment]; !ok {
			byOwner[h.Comment] = nil
			if !w.Known[h.Comment] {
				// A record of a node with no Node object and not in gossip: deleted.
				brake.Lost++
				brake.Total++
			}
		}
	}
	owners := make([]string, 0, len(byOwner))
	for o := range byOwner {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	var all Plan
	for _, o := range owners {
		var obs []cloudflare.Record
		for _, h := range have {
			if h.Comment == o || names[Normalize(h).Name] == o {
				obs = append(obs, h)
			}
		}
		if len(byOwner[o]) == 0 && w.Keep[o] {
			// Neither Ready nor lost: leave its records exactly as they are.
			all.Keep = append(all.Keep, ownedBy(obs, o)...)
			continue
		}
		p := Compute(byOwner[o], obs, o)
		all.Create = append(all.Create, p.Create...)
		all.Update = append(all.Update, p.Update...)
		all.Delete = append(all.Delete, p.Delete...)
		all.Keep = append(all.Keep, p.Keep...)
		all.Foreign = append(all.Foreign, p.Foreign...)
		all.Blocked = append(all.Blocked, p.Blocked...)
	}
	if braked(brake.Lost, brake.Total) {
		brake.Held, all.Keep, all.Delete = all.Delete, append(all.Keep, all.Delete...), nil
		sortRecords(all.Keep)
	}
	return all, brake
}

// KeepOwned returns wanted plus, for every owned record in have of wanted's name and type
// whose content wanted drops, a wanted record with that content: planned with Compute, it adds
// what is new and removes nothing. The disruption brake uses it for records that follow nodes.
func KeepOwned(wanted, have []cloudflare.Record, owner string) []cloudflare.Record {
	if len(wanted) == 0 {
		return wanted
	}
	out := normalizeAll(wanted)
	base := out[0]
	for _, h := range normalizeAll(have) {
		if h.Comment != owner || !sameRRSet(h, base) || slices.ContainsFunc(out, func(w cloudflare.Record) bool { return w.Content == h.Content }) {
			continue
		}
		k := base
		k.Content = h.Content
		out = append(out, k)
	}
	return out
}

func ownedBy(rs []cloudflare.Record, owner string) []cloudflare.Record {
	var out []cloudflare.Record
	for _, r := range rs {
		if r.Comment == owner {
			out = append(out, r)
		}
	}
	return out
}

// inTheWay returns the foreign records that conflict with w: the same name and type for A and
// AAAA (the name would answer both), CNAME exclusivity, or an identical record of another type.
func inTheWay(foreign []cloudflare.Record, w cloudflare.Record) []cloudflare.Record {
	var out []cloudflare.Record
	for _, f := range foreign {
		if f.Name != w.Name {
			continue
		}
		addr := func(t string) bool { return t == "A" || t == "AAAA" }
		switch {
		case w.Type == "CNAME" && (addr(f.Type) || f.Type == "CNAME"),
			f.Type == "CNAME" && addr(w.Type),
			f.Type == w.Type && addr(w.Type),
			f.Type == w.Type && f.Content == w.Content:
			out = append(out, f)
		}
	}
	return out
}

func identical(foreign []cloudflare.Record, w cloudflare.Record) []cloudflare.Record {
	var out []cloudflare.Record
	for _, f := range foreign {
		if sameRRSet(f, w) && f.Content == w.Content {
			out = append(out, f)
		}
	}
	return out
}

func sameRRSet(a, b cloudflare.Record) bool { return a.Name == b.Name && a.Type == b.Type }

func find(rs []cloudflare.Record, used []bool, ok func(cloudflare.Record) bool) int {
	for i, r := range rs {
		if !used[i] && ok(r) {
			return i
		}
	}
	return -1
}

func appendUnique(dst []cloudflare.Record, rs ...cloudflare.Record) []cloudflare.Record {
next:
	for _, r := range rs {
		for _, d := range dst {
			if d.ID == r.ID {
				continue next
			}
		}
		dst = append(dst, r)
	}
	return dst
}

func dedupe(rs []cloudflare.Record) []cloudflare.Record {
	sortRecords(rs)
	var out []cloudflare.Record
	for i, r := range rs {
		if i > 0 && sameRRSet(r, rs[i-1]) && r.Content == rs[i-1].Content {
			continue
		}
		out = append(out, r)
	}
	return out
}

func normalizeAll(rs []cloudflare.Record) []cloudflare.Record {
	out := make([]cloudflare.Record, len(rs))
	for i, r := range rs {
		out[i] = Normalize(r)
	}
	return out
}

// Normalize puts a record in the form the API stores: lower-case name and CNAME target without
// the final dot, canonical IP text, TTL 1 for proxied records.
func Normalize(r cloudflare.Record) cloudflare.Record {
	r.Type = strings.ToUpper(r.Type)
	r.Name = strings.TrimSuffix(strings.ToLower(r.Name), ".")
	switch r.Type {
	case "A", "AAAA":
		if ip := net.ParseIP(r.Content); ip != nil {
			r.Content = ip.String()
		}
	case "CNAME":
		r.Content = strings.TrimSuffix(strings.ToLower(r.Content), ".")
	}
	if r.Proxied {
		r.TTL = 1
	}
	return r
}

func sortRecords(rs []cloudflare.Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Content != b.Content {
			return a.Content < b.Content
		}
		return a.ID < b.ID
	})
}
