package v1

import (
	"log/slog"
	"sort"
	"strings"
)

// Secret holds string values (tokens, passwords). Its values are never printed by ctl, never
// logged, never put in an error: fmt and slog see only the key names.
type Secret struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     SecretSpec   `json:"spec"`
	Status   SecretStatus `json:"status,omitempty"`
}

// SecretSpec holds the values.
type SecretSpec struct {
	Data SecretData `json:"data"`
	// Sealed is how the store keeps Data at rest: the values encrypted under a cluster data key
	// (pkg/seal), with Data empty. Readers in the agent and API clients never see it; it is set
	// by the store only.
	Sealed *SealedData `json:"sealed,omitempty"`
}

// SealedData is Data, JSON-encoded and encrypted with AES-256-GCM under the data key KeyID;
// the additional data binds the Secret's name and the key ID.
type SealedData struct {
	KeyID      string `json:"keyID"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// SecretStatus is empty.
type SecretStatus struct{}

// SecretData maps keys to values. Its String and LogValue show keys only.
type SecretData map[string]string

// Redacted is what a secret value is replaced with wherever it would be shown.
const Redacted = "<redacted>"

// String lists the keys, never the values, so that %v and %s cannot leak a secret.
func (d SecretData) String() string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "SecretData{" + strings.Join(keys, ",") + ": " + Redacted + "}"
}

// GoString is String, for %#v.
func (d SecretData) GoString() string { return d.String() }

// LogValue keeps values out of structured logs.
func (d SecretData) LogValue() slog.Value { return slog.StringValue(d.String()) }

// Redact returns a copy of the secret whose values are replaced by Redacted.
func (s *Secret) Redact() *Secret {
	c := s.DeepCopyObject().(*Secret)
	for k := range c.Spec.Data {
		c.Spec.Data[k] = Redacted
	}
	return c
}
