package auth

import (
	"context"
	"net/http"
	"strings"
)

// Principal is who made a request.
type Principal struct {
	// Name is the token's name ("anonymous" on an API without tokens: loopback only).
	Name  string
	Scope Scope
}

// Anonymous is the principal of a request to an API that has no tokens (a loopback-only API).
// It has the admin scope: whoever can reach the loopback address is on the machine.
var Anonymous = Principal{Name: "anonymous", Scope: ScopeAdmin}

// Allows reports whether a scope may serve a request to a route pattern ("GET /apis/v1/{plural}").
// Routes declare the least scope they need (Need); admin passes everything, read passes read
// routes, provider passes provider routes only.
func (p Principal) Allows(need Scope) bool {
	switch p.Scope {
	case ScopeAdmin:
		return true
	case ScopeRead:
		return need == ScopeRead
	case ScopeProvider:
		return need == ScopeProvider
	}
	return false
}

// BearerToken returns the token of an "Authorization: Bearer" header, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
