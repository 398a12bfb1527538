package gossip

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/constellation-sh/constellation/pkg/observed"
)

// Image advertisement (docs/images.md, "Advertisement"): each node's set of image keys
// (observed.ImageKey: 8 bytes of the SHA-256 of a normalised reference, at most
// observed.MaxImageKeys) travels in the push/pull full state (kindState, TCP), beside the
// replicas, as a new JSON field "im". It is not in the node metadata (memberlist's 512 bytes
// cannot hold 256 keys) nor in the UDP broadcasts (2 KiB of keys do not fit a packet). Every
// full state carries every node's latest set, so a set spreads like the replicas do, one
// exchange per PushPullInterval. An older agent ignores the field (unknown JSON fields are
// tolerated within one wire version) and neither advertises nor relays sets; the version byte
// is unchanged.

// wireImages is one node's advertised set. Version orders the sets of one node (the sender's
// clock, in nanoseconds, strictly increasing); Keys are the 8-byte keys, concatenated
// (base64 in the JSON).
type wireImages struct {
	Node    string `json:"n"`
	Version int64  `json:"v"`
	Keys    []byte `json:"k,omitempty"`
}

// imageSet is what this agent knows of one node's images.
type imageSet struct {
	version int64
	keys    []uint64
}

func packKeys(keys []uint64) []byte {
	b := make([]byte, 8*len(keys))
	for i, k := range keys {
		binary.BigEndian.PutUint64(b[8*i:], k)
	}
	return b
}

func unpackKeys(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return out
}

func checkImages(ims []wireImages) error {
	if len(ims) > maxNodes {
		return fmt.Errorf("%w: %d image sets", errBadContent, len(ims))
	}
	seen := make(map[string]bool, len(ims))
	for _, im := range ims {
		if err := checkName("image set node", im.Node); err != nil {
			return err
		}
		if seen[im.Node] {
			return fmt.Errorf("%w: image set of node %q twice", errBadContent, im.Node)
		}
		seen[im.Node] = true
		if len(im.Keys)%8 != 0 || len(im.Keys) > 8*observed.MaxImageKeys {
			return fmt.Errorf("%w: image set of node %q: %d bytes of keys (multiple of 8, at most %d)",
				errBadContent, im.Node, len(im.Keys), 8*observed.MaxImageKeys)
		}
	}
	return nil
}

// SetLocalImages advertises the images of this node's engine: refs are image IDs, repo tags
// and repo digests, most wanted first (the first observed.MaxImageKeys distinct keys are
// kept). It returns the number of keys advertised. The set reaches the others with the next
// push/pull exchanges.
func (g *Gossip) SetLocalImages(refs []string) int {
	keys := make([]uint64, 0, min(len(refs), observed.MaxImageKeys))
	seen := make(map[uint64]bool, len(refs))
	for _, r := range refs {
		if len(keys) == observed.MaxImageKeys {
			break
		}
		k := observed.ImageKey(r)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	g.mu.Lock()
	cur := g.images[g.cfg.NodeName]
	if cur == nil || !equalKeys(cur.keys, keys) {
		v := g.cfg.Clock.Now().UnixNano()
		if cur != nil && v <= cur.version {
			v = cur.version + 1
		}
		g.images[g.cfg.NodeName] = &imageSet{version: v, keys: keys}
	}
	g.mu.Unlock()
	g.set.SetNodeImages(g.cfg.NodeName, keys)
	return len(keys)
}

func equalKeys(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// imagesForStateLocked is every image set to send in a push/pull: ours and those of the
// members we know, sorted by node; self is ours alone.
func (g *Gossip) imagesForStateLocked() (all []wireImages, self []wireImages) {
	names := make([]string, 0, len(g.images))
	for name := range g.images {
		if _, ok := g.members[name]; ok || name == g.cfg.NodeName {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s := g.images[name]
		w := wireImages{Node: name, Version: s.version, Keys: packKeys(s.keys)}
		if name == g.cfg.NodeName {
			self = []wireImages{w}
		}
		all = append(all, w)
	}
	return all, self
}

// mergeImages keeps, of each node's set, the newest version; our own is never taken from
// another. The observed set is updated for those that changed.
func (g *Gossip) mergeImages(ims []wireImages) {
	type change struct {
		node string
		keys []uint64
	}
	var changed []change
	g.mu.Lock()
	for _, im := range ims {
		if im.Node == g.cfg.NodeName {
			continue
		}
		if cur := g.images[im.Node]; cur != nil && cur.version >= im.Version {
			continue
		}
		keys := unpackKeys(im.Keys)
		g.images[im.Node] = &imageSet{version: im.Version, keys: keys}
		changed = append(changed, change{im.Node, keys})
	}
	g.mu.Unlock()
	for _, c := range changed {
		g.set.SetNodeImages(c.node, c.keys)
	}
}
