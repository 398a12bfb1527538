package v1

import "time"

// KindKeyring is the internal kind holding the cluster's data keys, which seal Secret values at
// rest (pkg/seal). It is replicated like any object, so every member has it, but it is not part
// of the API: the API server answers 404 for it and ctl does not name it.
const KindKeyring = "Keyring"

// KeyringName is the name of the one Keyring object.
const KeyringName = "data"

// Keyring holds the data keys, each wrapped (AES-256-GCM) by a key-encryption key derived from
// the cluster secret: the object itself never holds a usable key.
type Keyring struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     KeyringSpec   `json:"spec"`
	Status   KeyringStatus `json:"status,omitempty"`
}

// KeyringSpec lists the keys and names the one new values are sealed with.
type KeyringSpec struct {
	// ActiveKeyID names the key new values are sealed with; it is one of Keys.
	ActiveKeyID string `json:"activeKeyID"`
	// Keys are every key a stored value may be sealed with. A rotation adds one and drops the
	// others once no Secret uses them.
	Keys []WrappedKey `json:"keys"`
}

// WrappedKey is one data key, encrypted by the key-encryption key.
type WrappedKey struct {
	ID         string     `json:"id"`
	Nonce      []byte     `json:"nonce"`
	Ciphertext []byte     `json:"ciphertext"`
	Created    *time.Time `json:"created,omitempty"`
}

// KeyringStatus is empty.
type KeyringStatus struct{}

// internalKinds are stored and replicated but never served by the API.
var internalKinds = []KindInfo{
	{KindKeyring, "keyrings", "keyring", nil, func() Object { return &Keyring{TypeMeta: TypeMeta{APIVersion, KindKeyring}} }},
}

// Internal reports a kind the store keeps for the agents' own use: the API answers 404 for it,
// ctl does not list it, user input may not name it.
func (k KindInfo) Internal() bool {
	for _, i := range internalKinds {
		if i.Kind == k.Kind {
			return true
		}
	}
	return false
}

func (k *Keyring) GetMetadata() *ObjectMeta { return &k.Metadata }
func (k *Keyring) DeepCopyObject() Object   { return deepCopy(k) }

// Default fills in apiVersion and kind.
func (k *Keyring) Default() { defaultMeta(&k.TypeMeta, KindKeyring) }

// Validate checks the keyring's shape; it never looks inside a key.
func (k *Keyring) Validate() ErrorList {
	errs := validateMeta(&k.TypeMeta, &k.Metadata, KindKeyring)
	kp := path("spec").child("keys")
	active := false
	seen := map[string]bool{}
	for i, w := range k.Spec.Keys {
		p := kp.index(i)
		if w.ID == "" {
			errs.add(p.child("id").String(), "required")
		}
		if seen[w.ID] {
			errs.add(p.child("id").String(), "duplicate key id %q", w.ID)
		}
		seen[w.ID] = true
		if w.ID == k.Spec.ActiveKeyID {
			active = true
		}
		if len(w.Nonce) == 0 || len(w.Ciphertext) == 0 {
			errs.add(p.String(), "nonce and ciphertext are required")
		}
	}
	if !active {
		errs.add(path("spec").child("activeKeyID").String(), "must name one of spec.keys, got %q", k.Spec.ActiveKeyID)
	}
	return errs
}
