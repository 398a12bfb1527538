package observed

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Images each node advertises (docs/images.md, "Advertisement"). A node does not gossip its
// image references but short keys of them: the first 8 bytes of the SHA-256 of each
// normalised reference (ImageKey), at most MaxImageKeys per node. A key is a hint, not a
// proof: a collision or a stale list costs one 404 from the peer asked first, never a wrong
// image (the peer's engine resolves the reference itself).

// MaxImageKeys bounds the keys one node advertises (and that a receiver keeps of one node).
const MaxImageKeys = 256

// ImageKey is the advertised key of an image reference: "nginx", "docker.io/library/nginx"
// and "nginx:latest" give the same key, as do "x@sha256:…" and its normalised form. An image
// ID ("sha256:…") is its own key. A reference the grammar refuses is hashed as written.
func ImageKey(ref string) uint64 {
	sum := sha256.Sum256([]byte(NormalizeImageRef(ref)))
	return binary.BigEndian.Uint64(sum[:8])
}

// NormalizeImageRef returns the canonical form of ref Docker itself uses
// ("docker.io/library/nginx:latest"); an image ID or a reference the grammar refuses is
// returned as written (lower-cased for an ID).
func NormalizeImageRef(ref string) string {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "sha256:") {
		return strings.ToLower(ref)
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(named).String()
}

// ImageView is what a View knows of the images nodes advertise; *Set implements it.
type ImageView interface {
	// NodesWithImage returns the known nodes advertising ref, sorted by name, alive or not.
	NodesWithImage(ref string) []string
}

var _ ImageView = (*Set)(nil)

// SetNodeImages replaces the image keys node advertises (at most MaxImageKeys are kept). The
// watchers are woken only when the set of keys changed: an unchanged advertisement, repeated
// every exchange, is no news.
func (s *Set) SetNodeImages(node string, keys []uint64) {
	if len(keys) > MaxImageKeys {
		keys = keys[:MaxImageKeys]
	}
	m := make(map[uint64]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.images == nil {
		s.images = map[string]map[uint64]struct{}{}
	}
	if sameKeys(s.images[node], m) {
		return
	}
	s.images[node] = m
	s.notifyLocked()
}

// NodeImageKeys returns the keys node advertises, sorted (nil when it advertises none).
func (s *Set) NodeImageKeys(node string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for k := range s.images[node] {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// NodesWithImage implements ImageView.
func (s *Set) NodesWithImage(ref string) []string {
	k := ImageKey(ref)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for node, keys := range s.images {
		if _, ok := keys[k]; ok {
			if _, known := s.nodes[node]; known {
				out = append(out, node)
			}
		}
	}
	sort.Strings(out)
	return out
}

func sameKeys(a, b map[uint64]struct{}) bool {
	if a == nil || len(a) != len(b) {
		return a == nil && b == nil
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
