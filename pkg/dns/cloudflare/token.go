package cloudflare

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Token is a Cloudflare API token. Every way of printing it shows v1.Redacted.
type Token struct {
	value string
}

// NewToken wraps a token's text.
func NewToken(s string) Token { return Token{value: strings.TrimSpace(s)} }

// Empty reports whether there is no token.
func (t Token) Empty() bool { return t.value == "" }

// String implements fmt.Stringer without revealing the token.
func (t Token) String() string { return v1.Redacted }

// GoString implements fmt.GoStringer without revealing the token.
func (t Token) GoString() string { return v1.Redacted }

// LogValue implements slog.LogValuer without revealing the token.
func (t Token) LogValue() slog.Value { return slog.StringValue(v1.Redacted) }

// MarshalText keeps the token out of JSON and text encodings.
func (t Token) MarshalText() ([]byte, error) { return []byte(v1.Redacted), nil }

// ErrInsecureTokenFile is returned for a token file others may read or write.
var ErrInsecureTokenFile = errors.New("cloudflare: token file must be readable by its owner only (0600 or 0400)")

// ReadTokenFile reads a token from path. The file must be a regular file with no group or other
// permission bits (0600 or 0400); the token is the file's content without surrounding spaces.
func ReadTokenFile(path string) (Token, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Token{}, fmt.Errorf("cloudflare: token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Token{}, fmt.Errorf("cloudflare: token file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Token{}, fmt.Errorf("token file %s has mode %04o: %w", path, perm, ErrInsecureTokenFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Token{}, fmt.Errorf("cloudflare: token file: %w", err)
	}
	t := NewToken(string(b))
	if t.Empty() {
		return Token{}, fmt.Errorf("cloudflare: token file %s is empty", path)
	}
	return t, nil
}
