package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/memberlist"
)

// KeyringFile is the file in the data directory that holds every installed gossip key and
// which one is primary. It replaces KeyFile (a single key), which LoadKeyring still reads.
const KeyringFile = "gossip.keyring"

// MaxKeys bounds a keyring: a rotation needs two keys, an interrupted one a few more.
const MaxKeys = 8

// Keyring is a set of gossip keys: Primary encrypts, every key in Keys decrypts. Keys holds the
// primary first, as memberlist orders them.
type Keyring struct {
	Keys [][]byte
}

// Primary returns the key that encrypts (nil for an empty keyring).
func (kr Keyring) Primary() []byte {
	if len(kr.Keys) == 0 {
		return nil
	}
	return kr.Keys[0]
}

// Has reports whether k is in the keyring.
func (kr Keyring) Has(k []byte) bool {
	for _, x := range kr.Keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// Fingerprints returns each key's fingerprint, the primary first.
func (kr Keyring) Fingerprints() []string {
	out := make([]string, len(kr.Keys))
	for i, k := range kr.Keys {
		out[i] = Fingerprint(k)
	}
	return out
}

// Fingerprint names a key without revealing it: the first 8 bytes of its SHA-256, in hex. Keys
// are 32 random bytes, so the hash tells nothing about the key; it lets an operator and the
// rotation compare keyrings across nodes without the key bytes ever leaving the node.
func Fingerprint(k []byte) string {
	h := sha256.Sum256(k)
	return hex.EncodeToString(h[:8])
}

// Validate checks the keyring: 1 to MaxKeys keys of KeySize bytes, no duplicates.
func (kr Keyring) Validate() error {
	if len(kr.Keys) == 0 {
		return errors.New("gossip: keyring: no key")
	}
	if len(kr.Keys) > MaxKeys {
		return fmt.Errorf("gossip: keyring: %d keys, at most %d", len(kr.Keys), MaxKeys)
	}
	for i, k := range kr.Keys {
		if len(k) != KeySize {
			return fmt.Errorf("gossip: keyring: keys[%d]: must be %d bytes, got %d", i, KeySize, len(k))
		}
		for j := range i {
			if bytes.Equal(kr.Keys[j], k) {
				return fmt.Errorf("gossip: keyring: keys[%d]: duplicate of keys[%d]", i, j)
			}
		}
	}
	return nil
}

// keyringJSON is the keyring's text form, in KeyringFile and between agents: base64 keys, the
// primary named separately so that the order of keys does not carry meaning on the wire.
type keyringJSON struct {
	Primary string   `json:"primary"`
	Keys    []string `json:"keys"`
}

// EncodeKeyring returns the keyring's JSON text (it holds the keys: a secret).
func EncodeKeyring(kr Keyring) ([]byte, error) {
	if err := kr.Validate(); err != nil {
		return nil, err
	}
	j := keyringJSON{Primary: EncodeKey(kr.Primary())}
	for _, k := range kr.Keys {
		j.Keys = append(j.Keys, EncodeKey(k))
	}
	return json.Marshal(j)
}

// DecodeKeyring parses a keyring from EncodeKeyring's text: from the data dir or from a peer
// (untrusted input).
func DecodeKeyring(b []byte) (Keyring, error) {
	var j keyringJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Keyring{}, fmt.Errorf("gossip: keyring: %w", err)
	}
	return KeyringFromText(j.Primary, j.Keys)
}

// KeyringFromText builds a keyring from a base64 primary and base64 keys, as files and the
// join exchange carry them. The primary may be repeated among keys or not; keys may be empty.
func KeyringFromText(primary string, keys []string) (Keyring, error) {
	if len(keys) > MaxKeys {
		return Keyring{}, fmt.Errorf("gossip: keyring: %d keys, at most %d", len(keys), MaxKeys)
	}
	p, err := DecodeKey(primary)
	if err != nil {
		return Keyring{}, fmt.Errorf("gossip: keyring: primary: %w", err)
	}
	kr := Keyring{Keys: [][]byte{p}}
	for i, s := range keys {
		k, err := DecodeKey(s)
		if err != nil {
			return Keyring{}, fmt.Errorf("gossip: keyring: keys[%d]: %w", i, err)
		}
		if bytes.Equal(k, p) {
			continue
		}
		if kr.Has(k) {
			return Keyring{}, fmt.Errorf("gossip: keyring: keys[%d]: duplicate", i)
		}
		kr.Keys = append(kr.Keys, k)
	}
	return kr, kr.Validate()
}

// LoadKeyring reads dataDir/gossip.keyring, or, when there is none, the single key of
// dataDir/gossip.key that agents before key rotation kept. It returns an error wrapping
// fs.ErrNotExist when there is neither.
func LoadKeyring(dataDir string) (Keyring, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, KeyringFile))
	if errors.Is(err, os.ErrNotExist) {
		k, err := LoadKey(dataDir)
		if err != nil {
			return Keyring{}, err
		}
		return Keyring{Keys: [][]byte{k}}, nil
	}
	if err != nil {
		return Keyring{}, fmt.Errorf("gossip: read keyring: %w", err)
	}
	kr, err := DecodeKeyring(b)
	if err != nil {
		return Keyring{}, fmt.Errorf("%s: %w", KeyringFile, err)
	}
	return kr, nil
}

// SaveKeyring writes kr to dataDir/gossip.keyring (mode 0600, atomically: a crash leaves the old
// keyring or the new one) and then removes a legacy gossip.key, so that a key rotated out does
// not linger on disk.
func SaveKeyring(dataDir string, kr Keyring) error {
	b, err := EncodeKeyring(kr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("gossip: save keyring: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dataDir, KeyringFile), append(b, '\n')); err != nil {
		return fmt.Errorf("gossip: save keyring: %w", err)
	}
	if err := os.Remove(filepath.Join(dataDir, KeyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("gossip: remove the legacy %s: %w", KeyFile, err)
	}
	return nil
}

// Keyring returns a copy of the installed keys, the primary first (empty without encryption).
func (g *Gossip) Keyring() Keyring {
	ks := g.Keys()
	out := Keyring{Keys: make([][]byte, len(ks))}
	for i, k := range ks {
		out.Keys[i] = bytes.Clone(k)
	}
	return out
}

// AdoptKeyring makes this node's keyring kr: it installs kr's keys, uses its primary and removes
// every other key. A node that missed a rotation (it was down) adopts the keyring it fetched from
// a member.
func (g *Gossip) AdoptKeyring(kr Keyring) error {
	if err := kr.Validate(); err != nil {
		return err
	}
	for _, k := range kr.Keys {
		if err := g.InstallKey(k); err != nil {
			return err
		}
	}
	if err := g.UseKey(kr.Primary()); err != nil {
		return err
	}
	cur := g.Keyring().Keys
	// From the last key backwards: memberlist's RemoveKey shifts the keys after the removed one
	// in place, in the slice its readers hold; removing the last one writes nothing.
	for i := len(cur) - 1; i > 0; i-- {
		if !kr.Has(cur[i]) {
			if err := g.RemoveKey(cur[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Keys returns the installed encryption keys, the primary first.
func (g *Gossip) Keys() [][]byte {
	if g.keys == nil {
		return nil
	}
	return g.keys.GetKeys()
}

// InstallKey adds a key accepted for decryption on this node (first step of a rotation).
func (g *Gossip) InstallKey(k []byte) error {
	return g.keyring(func(kr *memberlist.Keyring) error { return kr.AddKey(k) })
}

// UseKey makes an installed key the primary one, used for encryption (second step).
func (g *Gossip) UseKey(k []byte) error {
	return g.keyring(func(kr *memberlist.Keyring) error { return kr.UseKey(k) })
}

// RemoveKey removes a key that is no longer primary (last step).
func (g *Gossip) RemoveKey(k []byte) error {
	return g.keyring(func(kr *memberlist.Keyring) error { return kr.RemoveKey(k) })
}

func (g *Gossip) keyring(f func(*memberlist.Keyring) error) error {
	if g.keys == nil {
		return errors.New("gossip: encryption is disabled")
	}
	if err := f(g.keys); err != nil {
		return fmt.Errorf("gossip: keyring: %w", err)
	}
	return nil
}
