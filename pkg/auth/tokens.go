package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Scope is what a token may do.
type Scope string

// Scopes.
const (
	// ScopeAdmin may do everything: write objects, reveal Secret values, join nodes, rotate keys.
	ScopeAdmin Scope = "admin"
	// ScopeRead may get, list and watch objects and read metrics; Secret values stay redacted.
	ScopeRead Scope = "read"
	// ScopeProvider may only read the Traefik provider paths.
	ScopeProvider Scope = "provider"
)

// ParseScope accepts a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeAdmin, ScopeRead, ScopeProvider:
		return Scope(s), nil
	}
	return "", fmt.Errorf("unknown scope %q (admin, read or provider)", s)
}

// Token is one API credential.
type Token struct {
	// Name says who uses it; it is what the audit log records. Never the secret.
	Name  string
	Scope Scope
	// Secret is the bearer value. Never logged.
	Secret string
}

// String keeps the secret out of %v.
func (t Token) String() string { return fmt.Sprintf("token %s (%s)", t.Name, t.Scope) }

// MinSecretLength is the shortest token secret accepted without a warning.
const MinSecretLength = 16

// ParseTokens reads a token file. Two forms:
//
//   - one line holding only a secret: the admin token named "admin" (the form of --api.tokenFile
//     before scopes existed);
//   - lines of "NAME SCOPE SECRET", separated by blanks; '#' starts a comment.
//
// Names are unique, secrets are unique, at least one token is required. Errors name the line,
// never the secret.
func ParseTokens(b []byte) ([]Token, error) {
	var out []Token
	lines := strings.Split(string(b), "\n")
	var significant []int
	for i, l := range lines {
		if t := strings.TrimSpace(stripComment(l)); t != "" {
			significant = append(significant, i)
		}
	}
	if len(significant) == 0 {
		return nil, errors.New("no token in the file")
	}
	if len(significant) == 1 {
		if f := strings.Fields(stripComment(lines[significant[0]])); len(f) == 1 {
			return []Token{{Name: "admin", Scope: ScopeAdmin, Secret: f[0]}}, nil
		}
	}
	names := map[string]bool{}
	for _, i := range significant {
		f := strings.Fields(stripComment(lines[i]))
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want NAME SCOPE TOKEN, got %d fields", i+1, len(f))
		}
		name, scopeStr, secret := f[0], f[1], f[2]
		if !validName(name) {
			return nil, fmt.Errorf("line %d: name %q: use letters, digits, '-', '_' and '.'", i+1, name)
		}
		if names[name] {
			return nil, fmt.Errorf("line %d: name %q is used twice", i+1, name)
		}
		names[name] = true
		scope, err := ParseScope(scopeStr)
		if err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", i+1, name, err)
		}
		for _, o := range out {
			if subtle.ConstantTimeCompare([]byte(o.Secret), []byte(secret)) == 1 {
				return nil, fmt.Errorf("line %d (%s): same secret as token %q", i+1, name, o.Name)
			}
		}
		out = append(out, Token{Name: name, Scope: scope, Secret: secret})
	}
	return out, nil
}

func stripComment(l string) string {
	if i := strings.IndexByte(l, '#'); i >= 0 {
		return l[:i]
	}
	return l
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.')) {
			return false
		}
	}
	return true
}

// Set is an immutable set of tokens, looked up in constant time per token.
type Set struct {
	tokens []Token
	hashes [][32]byte
}

// NewSet builds a set.
func NewSet(tokens []Token) *Set {
	s := &Set{tokens: slices.Clone(tokens)}
	for _, t := range s.tokens {
		s.hashes = append(s.hashes, sha256.Sum256([]byte(t.Secret)))
	}
	return s
}

// Lookup returns the token whose secret is given. Every token is compared (constant time over
// fixed-length digests), so timing says nothing about which one matched or how much did.
func (s *Set) Lookup(secret string) (Token, bool) {
	if s == nil || secret == "" {
		return Token{}, false
	}
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range s.hashes {
		if subtle.ConstantTimeCompare(h[:], s.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return s.tokens[found], true
}

// Tokens returns a copy of the tokens.
func (s *Set) Tokens() []Token {
	if s == nil {
		return nil
	}
	return slices.Clone(s.tokens)
}

// First returns the first token of a scope: what an agent presents when it joins.
func (s *Set) First(scope Scope) (Token, bool) {
	for _, t := range s.Tokens() {
		if t.Scope == scope {
			return t, true
		}
	}
	return Token{}, false
}

// Len is the number of tokens.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.tokens)
}
