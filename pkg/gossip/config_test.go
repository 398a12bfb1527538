package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/observed"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.NodeName = "a"
		c.EncryptionKey = testKey
		c.Set = observed.NewSet()
		return c
	}
	if err := func() error { c := good(); return c.validate() }(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no name":          {func(c *Config) { c.NodeName = "" }, "nodeName"},
		"no set":           {func(c *Config) { c.Set = nil }, "set"},
		"bad bind":         {func(c *Config) { c.BindAddress = "nope" }, "bindAddress"},
		"short key":        {func(c *Config) { c.EncryptionKey = []byte("short") }, "encryptionKey"},
		"no key":           {func(c *Config) { c.EncryptionKey = nil }, "encryptionKey"},
		"bad extra key":    {func(c *Config) { c.ExtraKeys = [][]byte{{1}} }, "extraKeys[0]"},
		"timeout too long": {func(c *Config) { c.ProbeTimeout = 200 * time.Millisecond }, "probeTimeout"},
		"lifeguard off":    {func(c *Config) { c.AwarenessMaxMultiplier = 1 }, "awarenessMaxMultiplier"},
		"zero interval":    {func(c *Config) { c.ProbeInterval = 0 }, "probeInterval"},
		"huge messages":    {func(c *Config) { c.MaxMessageSize = 9000 }, "maxMessageSize"},
		"labels do not fit": {func(c *Config) {
			c.Labels = map[string]string{}
			for i := range 30 {
				c.Labels[strings.Repeat("k", 10)+string(rune('a'+i))] = strings.Repeat("v", 20)
			}
		}, "labels"},
	}
	for name, tc := range cases {
		c := good()
		tc.mod(&c)
		err := c.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
	c := good()
	c.EncryptionKey, c.DisableEncryption = nil, true
	if err := c.validate(); err != nil {
		t.Errorf("no key with encryption disabled: %v", err)
	}
}

func TestSaveAndLoadKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := LoadKey(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKey without a key file: %v", err)
	}
	k1, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize {
		t.Fatalf("key of %d bytes", len(k1))
	}
	if err := SaveKey(dir, k1); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	k2, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) {
		t.Fatal("LoadKey after SaveKey returned another key")
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("not base64!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(dir); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
	if err := SaveKey(dir, k1); err != nil {
		t.Fatal(err)
	}
	if k3, err := LoadKey(dir); err != nil || string(k3) != string(k1) {
		t.Fatalf("LoadKey after SaveKey: %v", err)
	}
}
