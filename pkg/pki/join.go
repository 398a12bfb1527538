package pki

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// JoinBundleVersion is the only JoinBundle version Decode accepts.
const JoinBundleVersion = 1

// Limits of a JoinBundle.
const (
	MaxJoinBundleSize    = 64 << 10
	maxClusterSecretSize = 1024
	maxJoinPEMSize       = 16 << 10
	maxDataKeySize       = 8 << 10
)

// JoinBundle is what a member hands a joiner once the joiner's admin token has been checked,
// over TLS verified against the CA (see FetchCA): everything that makes the joiner a member.
// Its String and LogValue redact every secret, so a bundle printed or logged by mistake leaks
// nothing; the JSON encoding (Encode) carries them all.
type JoinBundle struct {
	// Version is JoinBundleVersion.
	Version int `json:"version"`
	// ClusterSecret is the peer secret for raft, gossip-key handout and peer calls. Required,
	// printable ASCII without spaces, at most 1024 bytes.
	ClusterSecret string `json:"clusterSecret"`
	// CACertPEM and CAKeyPEM are the cluster CA; the key must belong to the certificate.
	// Required: with them the joiner issues its own node certificate.
	CACertPEM string `json:"caCertPEM"`
	CAKeyPEM  string `json:"caKeyPEM"`
	// GossipKey is the gossip encryption key, standard base64 (as gossip.EncodeKey writes it)
	// of 16, 24 or 32 bytes. Required.
	GossipKey string `json:"gossipKey"`
	// DataKey is the data key that seals Secrets at rest, in its owner's text encoding
	// (opaque here: printable ASCII, at most 8 KiB). Optional.
	DataKey string `json:"dataKey,omitempty"`
}

// Validate checks every field (see the field comments).
func (b *JoinBundle) Validate() error {
	if b.Version != JoinBundleVersion {
		return fmt.Errorf("join bundle: version: want %d, got %d", JoinBundleVersion, b.Version)
	}
	if b.ClusterSecret == "" {
		return errors.New("join bundle: clusterSecret: required")
	}
	if len(b.ClusterSecret) > maxClusterSecretSize || strings.ContainsFunc(b.ClusterSecret, func(r rune) bool { return notPrintableASCII(r) || r == ' ' }) {
		return fmt.Errorf("join bundle: clusterSecret: want at most %d printable ASCII characters without spaces", maxClusterSecretSize)
	}
	if b.CACertPEM == "" {
		return errors.New("join bundle: caCertPEM: required")
	}
	if b.CAKeyPEM == "" {
		return errors.New("join bundle: caKeyPEM: required")
	}
	if len(b.CACertPEM) > maxJoinPEMSize || len(b.CAKeyPEM) > maxJoinPEMSize {
		return fmt.Errorf("join bundle: caCertPEM, caKeyPEM: at most %d bytes each", maxJoinPEMSize)
	}
	if _, err := LoadCA([]byte(b.CACertPEM), []byte(b.CAKeyPEM)); err != nil {
		// LoadCA's errors say which of the two is wrong and never quote the key.
		return fmt.Errorf("join bundle: caCertPEM, caKeyPEM: %w", err)
	}
	if b.GossipKey == "" {
		return errors.New("join bundle: gossipKey: required")
	}
	k, err := base64.StdEncoding.DecodeString(b.GossipKey)
	if err != nil {
		return errors.New("join bundle: gossipKey: not standard base64")
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("join bundle: gossipKey: want 16, 24 or 32 bytes, got %d", n)
	}
	if len(b.DataKey) > maxDataKeySize || strings.ContainsFunc(b.DataKey, notPrintableASCII) {
		return fmt.Errorf("join bundle: dataKey: want at most %d printable ASCII characters", maxDataKeySize)
	}
	return nil
}

// CA parses the bundle's CA.
func (b *JoinBundle) CA() (*CA, error) {
	ca, err := LoadCA([]byte(b.CACertPEM), []byte(b.CAKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("join bundle: %w", err)
	}
	return ca, nil
}

// Encode validates the bundle and returns its JSON.
func (b *JoinBundle) Encode() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// DecodeJoinBundle parses untrusted JSON strictly: at most MaxJoinBundleSize bytes, no unknown
// fields, nothing after the object, every field valid (Validate).
func DecodeJoinBundle(data []byte) (*JoinBundle, error) {
	if len(data) > MaxJoinBundleSize {
		return nil, fmt.Errorf("join bundle: %d bytes, more than %d", len(data), MaxJoinBundleSize)
	}
	var b JoinBundle
	if err := decodeStrict(data, &b); err != nil {
		// json's errors quote field names and types, never values.
		return nil, fmt.Errorf("join bundle: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// String shows which fields are set, never their values.
func (b JoinBundle) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "redacted"
	}
	ca := "unset"
	if c, err := parseOneCertPEM([]byte(b.CACertPEM)); err == nil {
		ca = Fingerprint(c)
	}
	return fmt.Sprintf("JoinBundle{version: %d, clusterSecret: %s, ca: %s, caKey: %s, gossipKey: %s, dataKey: %s}",
		b.Version, set(b.ClusterSecret), ca, set(b.CAKeyPEM), set(b.GossipKey), set(b.DataKey))
}

// GoString is String, for %#v.
func (b JoinBundle) GoString() string { return b.String() }

// LogValue is String, for slog.
func (b JoinBundle) LogValue() slog.Value { return slog.StringValue(b.String()) }
