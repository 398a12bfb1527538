package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyringPersistence(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeyring(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKeyring of an empty dir: %v, want not exist", err)
	}
	// An agent from before rotation kept one key in gossip.key: it is read as a keyring of one.
	old := mustKey(t)
	if err := SaveKey(dir, old); err != nil {
		t.Fatal(err)
	}
	kr, err := LoadKeyring(dir)
	if err != nil || len(kr.Keys) != 1 || !bytes.Equal(kr.Primary(), old) {
		t.Fatalf("LoadKeyring of a legacy gossip.key: %v %v", kr.Fingerprints(), err)
	}

	next := mustKey(t)
	want := Keyring{Keys: [][]byte{next, old}}
	if err := SaveKeyring(dir, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyringFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("legacy gossip.key after SaveKeyring: %v, want removed (a rotated key must not linger)", err)
	}
	got, err := LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Fingerprints()) != fmt.Sprint(want.Fingerprints()) {
		t.Fatalf("round trip: %v, want %v (primary first)", got.Fingerprints(), want.Fingerprints())
	}
	// The primary is named in the file, not implied by order.
	if err := SaveKeyring(dir, Keyring{Keys: [][]byte{old, next}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadKeyring(dir); !bytes.Equal(got.Primary(), old) {
		t.Fatalf("primary after re-save: %s, want %s", Fingerprint(got.Primary()), Fingerprint(old))
	}
	raw, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	if !bytes.Contains(raw, []byte(EncodeKey(next))) {
		t.Fatalf("keyring file does not hold the keys: %s", raw)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyringFile), []byte(`{"primary":"nope"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(dir); err == nil || !strings.Contains(err.Error(), KeyringFile) {
		t.Fatalf("corrupt keyring: %v, want an error naming %s", err, KeyringFile)
	}
	if err := SaveKeyring(dir, Keyring{}); err == nil {
		t.Fatal("saved an empty keyring")
	}
}

func TestDecodeKeyringRefuses(t *testing.T) {
	k1, k2 := EncodeKey(mustKey(t)), EncodeKey(mustKey(t))
	short := EncodeKey([]byte("short"))
	var many []string
	for range MaxKeys + 1 {
		many = append(many, EncodeKey(mustKey(t)))
	}
	for _, tt := range []struct {
		in, want string
	}{
		{`{}`, "primary"},
		{`not json`, "keyring"},
		{`{"primary":"` + short + `"}`, "primary"},
		{`{"primary":"` + k1 + `","keys":["` + k2 + `","` + k2 + `"]}`, "keys[1]: duplicate"},
		{`{"primary":"` + k1 + `","keys":["` + short + `"]}`, "keys[0]"},
		{`{"primary":"` + k1 + `","keys":["` + strings.Join(many, `","`) + `"]}`, "at most"},
	} {
		if _, err := DecodeKeyring([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeKeyring(%.60s): %v, want an error saying %q", tt.in, err, tt.want)
		}
	}
	kr, err := DecodeKeyring([]byte(`{"primary":"` + k2 + `","keys":["` + k1 + `"]}`))
	if err != nil || len(kr.Keys) != 2 || EncodeKey(kr.Primary()) != k2 {
		t.Fatalf("a primary outside keys is added first: %v %v", kr.Fingerprints(), err)
	}
}

func FuzzDecodeKeyring(f *testing.F) {
	k1, k2 := EncodeKey(bytes.Repeat([]byte{1}, KeySize)), EncodeKey(bytes.Repeat([]byte{2}, KeySize))
	f.Add([]byte(`{"primary":"` + k1 + `","keys":["` + k1 + `","` + k2 + `"]}`))
	f.Add([]byte(`{"primary":"` + k1 + `"}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kr, err := DecodeKeyring(b)
		if err != nil {
			return
		}
		if err := kr.Validate(); err != nil {
			t.Fatalf("decoded an invalid keyring: %v", err)
		}
		enc, err := EncodeKeyring(kr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeKeyring(enc)
		if err != nil || fmt.Sprint(again.Fingerprints()) != fmt.Sprint(kr.Fingerprints()) {
			t.Fatalf("round trip: %v %v, want %v", again.Fingerprints(), err, kr.Fingerprints())
		}
	})
}

// TestRotationStepByStepKeepsGossipFlowing runs a rotation one node at a time, as the agent's
// coordinator does, and checks after every single step that a replica change published by the
// node just changed reaches the others: at no point is any pair of nodes unable to talk.
func TestRotationStepByStepKeepsGossipFlowing(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c")
	newKey := mustKey(t)
	seq := int32(0)
	flows := func(step string, from *tnode) {
		t.Helper()
		seq++
		from.g.SetLocalReplicas([]observed.Replica{replica(from.name, "web", seq, v1.ReplicaRunning)})
		want := fmt.Sprintf("%s/web/%d/", from.name, seq)
		for _, n := range nodes {
			eventually(t, 5*time.Second, step+": "+n.name+" sees "+want, func() error {
				if !strings.Contains(replicaSummary(n.set), want) {
					return fmt.Errorf("has %q", replicaSummary(n.set))
				}
				return nil
			})
		}
	}
	for _, n := range nodes {
		if err := n.g.InstallKey(newKey); err != nil {
			t.Fatal(err)
		}
		flows("installed on "+n.name, n)
	}
	for _, n := range nodes {
		if err := n.g.UseKey(newKey); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(n.g.Keyring().Primary(), newKey) {
			t.Fatalf("%s primary after UseKey: %s", n.name, Fingerprint(n.g.Keyring().Primary()))
		}
		flows("used on "+n.name, n)
	}
	for _, n := range nodes {
		if err := n.g.RemoveKey(newKey); err == nil {
			t.Fatalf("%s: removing the primary key was allowed", n.name)
		}
		if err := n.g.RemoveKey(testKey); err != nil {
			t.Fatal(err)
		}
		flows("old key removed on "+n.name, n)
	}
	for _, n := range nodes {
		if got := n.g.Keyring().Fingerprints(); len(got) != 1 || got[0] != Fingerprint(newKey) {
			t.Fatalf("%s keyring after rotation: %v", n.name, got)
		}
		if got := aliveNames(n.set); got != "a,b,c" {
			t.Fatalf("%s sees %q after rotation", n.name, got)
		}
	}

	// A node that missed the rotation cannot join until it adopts the cluster's keyring.
	d := startLoopback(t, "d", nil)
	if _, err := d.g.Join([]string{nodes[0].addr}); err == nil {
		t.Fatal("a node with only the old key joined")
	}
	if err := d.g.AdoptKeyring(nodes[0].g.Keyring()); err != nil {
		t.Fatal(err)
	}
	if got := d.g.Keyring().Fingerprints(); fmt.Sprint(got) != fmt.Sprint([]string{Fingerprint(newKey)}) {
		t.Fatalf("d keyring after adopting: %v, want only the new key", got)
	}
	if _, err := d.g.Join([]string{nodes[0].addr}); err != nil {
		t.Fatalf("join after adopting the keyring: %v", err)
	}
	nodes = append(nodes, d)
	flows("d rejoined", d)
}

func TestAdoptKeyringKeepsOrderAndRefusesInvalid(t *testing.T) {
	n := startLoopback(t, "a", nil)
	k1, k2 := mustKey(t), mustKey(t)
	if err := n.g.AdoptKeyring(Keyring{Keys: [][]byte{k2, k1}}); err != nil {
		t.Fatal(err)
	}
	want := []string{Fingerprint(k2), Fingerprint(k1)}
	if got := n.g.Keyring().Fingerprints(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keyring: %v, want %v (the test key removed)", got, want)
	}
	if err := n.g.AdoptKeyring(Keyring{Keys: [][]byte{[]byte("short")}}); err == nil {
		t.Fatal("adopted an invalid keyring")
	}
	if got := n.g.Keyring().Fingerprints(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keyring after a refused adoption: %v, want %v", got, want)
	}
}
