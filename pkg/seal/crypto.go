package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Errors of this package. Check them with errors.Is.
var (
	// ErrUnknownKey: a value is sealed with a key the cluster keyring does not hold.
	ErrUnknownKey = errors.New("seal: unknown data key")
	// ErrOpen: a value or a wrapped key failed authentication (tampered, sealed for another
	// Secret, or wrapped under another cluster secret).
	ErrOpen = errors.New("seal: cannot open")
	// ErrMalformed: a sealed value does not have the shape this package writes.
	ErrMalformed = errors.New("seal: malformed sealed value")
)

const (
	keyLen   = 32 // AES-256
	nonceLen = 12 // GCM's standard nonce
	tagLen   = 16
)

// kekInfo and kekSalt fix the HKDF derivation of the key-encryption key: changing either makes
// every keyring unreadable.
const (
	kekSalt = "constellation/v1 keyring salt"
	kekInfo = "constellation/v1 keyring KEK"
)

// DeriveKEK derives the key-encryption key that wraps the data keys from the cluster secret.
func DeriveKEK(clusterSecret string) ([]byte, error) {
	if clusterSecret == "" {
		return nil, errors.New("seal: the cluster secret is empty")
	}
	return hkdf.Key(sha256.New, []byte(clusterSecret), []byte(kekSalt), kekInfo, keyLen)
}

// secretAAD binds a sealed value to its Secret and key. The separators cannot occur in a DNS
// label or a key ID, so no two (name, keyID) pairs give the same bytes.
func secretAAD(name, keyID string) []byte {
	return []byte("constellation/v1 Secret\x00" + name + "\x00" + keyID)
}

func keyAAD(keyID string) []byte { return []byte("constellation/v1 data key\x00" + keyID) }

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != keyLen {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), keyLen)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func seal(key, plaintext, aad []byte) (nonce, ciphertext []byte, err error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, g.Seal(nil, nonce, plaintext, aad), nil
}

func open(key, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != nonceLen || len(ciphertext) < tagLen {
		return nil, ErrMalformed
	}
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// newKeyID names a fresh data key.
func newKeyID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "dk-" + hex.EncodeToString(b[:])
}

func newDataKey() ([]byte, error) {
	k := make([]byte, keyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// SealData seals data for the Secret name under key keyID.
func SealData(key []byte, keyID, name string, data v1.SecretData) (*v1.SealedData, error) {
	if data == nil {
		data = v1.SecretData{}
	}
	pt, err := json.Marshal(map[string]string(data))
	if err != nil {
		return nil, fmt.Errorf("seal: encode secrets/%s: %w", name, err)
	}
	nonce, ct, err := seal(key, pt, secretAAD(name, keyID))
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("seal: secrets/%s: %w", name, err)
	}
	return &v1.SealedData{KeyID: keyID, Nonce: nonce, Ciphertext: ct}, nil
}

// OpenData opens a value SealData sealed for the Secret name with key. Errors name the Secret
// and never quote a value.
func OpenData(key []byte, name string, sd *v1.SealedData) (v1.SecretData, error) {
	if sd == nil {
		return nil, fmt.Errorf("secrets/%s: spec.sealed: %w: absent", name, ErrMalformed)
	}
	pt, err := open(key, sd.Nonce, sd.Ciphertext, secretAAD(name, sd.KeyID))
	if err != nil {
		return nil, fmt.Errorf("secrets/%s: spec.sealed: data key %q: %w", name, sd.KeyID, err)
	}
	defer clear(pt)
	var data map[string]string
	if err := json.Unmarshal(pt, &data); err != nil || data == nil {
		// Authenticated bytes that do not decode: a bug in a writer, not an attack.
		return nil, fmt.Errorf("secrets/%s: spec.sealed: %w: the opened value is not a JSON object", name, ErrMalformed)
	}
	return data, nil
}

func checkShape(sd *v1.SealedData) error {
	switch {
	case sd.KeyID == "":
		return fmt.Errorf("%w: keyID is empty", ErrMalformed)
	case len(sd.Nonce) != nonceLen:
		return fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(sd.Nonce), nonceLen)
	case len(sd.Ciphertext) < tagLen:
		return fmt.Errorf("%w: ciphertext is %d bytes, shorter than the tag", ErrMalformed, len(sd.Ciphertext))
	}
	return nil
}

func wrapKey(kek []byte, id string, key []byte) (nonce, ct []byte, err error) {
	return seal(kek, key, keyAAD(id))
}

func unwrapKey(kek []byte, w v1.WrappedKey) ([]byte, error) {
	k, err := open(kek, w.Nonce, w.Ciphertext, keyAAD(w.ID))
	if err != nil {
		return nil, err
	}
	if len(k) != keyLen {
		return nil, fmt.Errorf("%w: key is %d bytes", ErrMalformed, len(k))
	}
	return k, nil
}
