package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, keyLen) }

func TestSealOpen(t *testing.T) {
	data := v1.SecretData{"password": "hunter2-distinctive", "user": "admin"}
	key := testKey(1)
	sd, err := SealData(key, "dk-1", "db", data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sd.Ciphertext, []byte("hunter2")) {
		t.Fatal("ciphertext holds the plaintext")
	}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }

	tests := []struct {
		name    string
		key     []byte
		secret  string
		sd      *v1.SealedData
		wantErr error
	}{
		{"round trip", key, "db", sd, nil},
		{"tampered ciphertext", key, "db", &v1.SealedData{KeyID: sd.KeyID, Nonce: sd.Nonce, Ciphertext: flip(sd.Ciphertext, 0)}, ErrOpen},
		{"tampered tag", key, "db", &v1.SealedData{KeyID: sd.KeyID, Nonce: sd.Nonce, Ciphertext: flip(sd.Ciphertext, len(sd.Ciphertext)-1)}, ErrOpen},
		{"tampered nonce", key, "db", &v1.SealedData{KeyID: sd.KeyID, Nonce: flip(sd.Nonce, 3), Ciphertext: sd.Ciphertext}, ErrOpen},
		{"moved to another Secret (AAD binds the name)", key, "web", sd, ErrOpen},
		{"relabelled key ID (AAD binds the key)", key, "db", &v1.SealedData{KeyID: "dk-2", Nonce: sd.Nonce, Ciphertext: sd.Ciphertext}, ErrOpen},
		{"wrong key", testKey(2), "db", sd, ErrOpen},
		{"short nonce", key, "db", &v1.SealedData{KeyID: sd.KeyID, Nonce: sd.Nonce[:8], Ciphertext: sd.Ciphertext}, ErrMalformed},
		{"truncated ciphertext", key, "db", &v1.SealedData{KeyID: sd.KeyID, Nonce: sd.Nonce, Ciphertext: sd.Ciphertext[:tagLen-1]}, ErrMalformed},
		{"absent", key, "db", nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenData(tt.key, tt.secret, tt.sd)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got["password"] != "hunter2-distinctive" || got["user"] != "admin" || len(got) != 2 {
					t.Fatalf("opened %d keys, not the values sealed", len(got))
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "secrets/"+tt.secret) {
				t.Fatalf("error does not name the Secret: %v", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatal("error quotes a value")
			}
		})
	}
}

func TestSealNoncesDiffer(t *testing.T) {
	a, _ := SealData(testKey(1), "k", "s", v1.SecretData{"a": "b"})
	b, _ := SealData(testKey(1), "k", "s", v1.SecretData{"a": "b"})
	if bytes.Equal(a.Nonce, b.Nonce) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Fatal("two seals of the same value share a nonce")
	}
}

func TestKEKAndWrap(t *testing.T) {
	k1, err := DeriveKEK("cluster-secret-1")
	if err != nil {
		t.Fatal(err)
	}
	k1b, _ := DeriveKEK("cluster-secret-1")
	k2, _ := DeriveKEK("cluster-secret-2")
	if !bytes.Equal(k1, k1b) || bytes.Equal(k1, k2) || len(k1) != keyLen {
		t.Fatal("KEK derivation is not a deterministic 32-byte function of the secret")
	}
	if _, err := DeriveKEK(""); err == nil {
		t.Fatal("empty cluster secret accepted")
	}
	dk := testKey(7)
	nonce, ct, err := wrapKey(k1, "dk-1", dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unwrapKey(k1, v1.WrappedKey{ID: "dk-1", Nonce: nonce, Ciphertext: ct}); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := unwrapKey(k2, v1.WrappedKey{ID: "dk-1", Nonce: nonce, Ciphertext: ct}); !errors.Is(err, ErrOpen) {
		t.Fatalf("unwrap under another cluster secret: %v", err)
	}
	if _, err := unwrapKey(k1, v1.WrappedKey{ID: "dk-2", Nonce: nonce, Ciphertext: ct}); !errors.Is(err, ErrOpen) {
		t.Fatalf("unwrap relabelled key: %v", err)
	}
}

// FuzzOpenEnvelope feeds arbitrary bytes to the envelope decoder and the opener: nothing
// panics, and nothing but the one genuine envelope opens.
func FuzzOpenEnvelope(f *testing.F) {
	key := testKey(3)
	// A fixed nonce, so that every fuzz worker process builds the same genuine envelope.
	g, err := newGCM(key)
	if err != nil {
		f.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{9}, nonceLen)
	sd := &v1.SealedData{KeyID: "dk-1", Nonce: nonce, Ciphertext: g.Seal(nil, nonce, []byte(`{"k":"v"}`), secretAAD("db", "dk-1"))}
	good, _ := json.Marshal(sd)
	f.Add(good)
	f.Add([]byte(`{"keyID":"dk-1","nonce":"AAAAAAAAAAAAAAAA","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"keyID":"","nonce":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"nonce":"!!"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := parseSealed(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decoder error is not ErrMalformed: %v", err)
			}
			return
		}
		data, err := OpenData(key, "db", env)
		if err != nil {
			return
		}
		if env.KeyID != sd.KeyID || !bytes.Equal(env.Nonce, sd.Nonce) || !bytes.Equal(env.Ciphertext, sd.Ciphertext) {
			t.Fatalf("a forged envelope opened: %q", b)
		}
		if data["k"] != "v" || len(data) != 1 {
			t.Fatal("the genuine envelope opened to other values")
		}
	})
}
