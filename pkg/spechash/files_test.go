package spechash

import (
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// spec.files is part of the hash when set (defaults spelled out or not), and a spec without it
// hashes as before (TestOldSpecsKeepTheirHash pins the old value).
func TestFilesInTheHash(t *testing.T) {
	base := v1.ServiceSpec{Image: "prom/prometheus:v3"}
	with := base
	with.Files = []v1.FileMount{{Secret: "db"}}
	spelled := base
	spelled.Files = []v1.FileMount{{Secret: "db", Path: "/run/secrets/db", Mode: 0o400}}
	other := base
	other.Files = []v1.FileMount{{Secret: "db", Mode: 0o444}}
	empty := base
	empty.Files = []v1.FileMount{}
	if Of(&with) == Of(&base) {
		t.Fatal("files do not change the hash")
	}
	if Of(&with) != Of(&spelled) {
		t.Fatal("spelling out the defaults changes the hash")
	}
	if Of(&with) == Of(&other) {
		t.Fatal("a file's mode does not change the hash")
	}
	if Of(&empty) != Of(&base) {
		t.Fatal("an empty list changes the hash")
	}
	names, keys := RollingSecrets(&with)
	if len(names) != 1 || names[0] != "db" || len(keys["db"]) != 1 || keys["db"][0] != "" {
		t.Fatalf("rolling secrets of a file: %v %v", names, keys)
	}
	cfg := base
	cfg.Files = []v1.FileMount{{Config: "b", Key: "k"}, {Config: "a"}, {Config: "b", Key: "j", Path: "/j"}}
	names, keys = FileConfigs(&cfg)
	if len(names) != 2 || names[0] != "a" || names[1] != "b" || len(keys["b"]) != 2 {
		t.Fatalf("file configs: %v %v", names, keys)
	}
	if ConfigDigest("a", "k", []byte("1")) == ConfigDigest("a", "k", []byte("2")) || ConfigDigest("a", "k", []byte("1")) == ConfigDigest("b", "k", []byte("1")) {
		t.Fatal("config digests collide")
	}
}
