package spechash

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// ConfigPrefix goes before a Config's name in the versions a revision runs (Revision), so that
// a Config and a Secret of the same name are two versions.
const ConfigPrefix = "configs/"

// FileConfigs returns the Configs spec.files names, names sorted, with the keys read of each
// ("" for a file without a key: the object's only key, so every key counts).
func FileConfigs(spec *v1.ServiceSpec) (names []string, keys map[string][]string) {
	keys = map[string][]string{}
	for _, f := range spec.Files {
		if f.Config == "" {
			continue
		}
		if _, ok := keys[f.Config]; !ok {
			names = append(names, f.Config)
		}
		keys[f.Config] = append(keys[f.Config], f.Key)
	}
	sort.Strings(names)
	return names, keys
}

// ConfigDigest is the digest of one value of a Config (16 hex digits of SHA-256 over the
// Config's name, the key and the value). A Config is not secret: no key is needed.
func ConfigDigest(config, key string, value []byte) string {
	d := sha256.New()
	d.Write([]byte(config + "\x00" + key + "\x00"))
	d.Write(value)
	return hex.EncodeToString(d.Sum(nil))[:Len]
}
