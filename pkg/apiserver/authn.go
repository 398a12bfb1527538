package apiserver

import (
	"fmt"
	"net/http"

	"github.com/constellation-sh/constellation/pkg/auth"
)

// tokens returns the tokens in force, nil when the API has none.
func (s *Server) tokens() *auth.Set {
	if s.cfg.Tokens != nil {
		if set := s.cfg.Tokens(); set.Len() > 0 {
			return set
		}
	}
	if s.cfg.Token != "" {
		return s.static
	}
	return nil
}

// authenticate finds the request's principal and checks that its scope allows the route. The
// principal rides in the request's context (audit log, reveal).
func (s *Server) authenticate(pattern string, need auth.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if need == "" {
			next(w, r)
			return
		}
		set := s.tokens()
		p := auth.Anonymous
		if set == nil && s.cfg.RequireTokens {
			writeError(w, http.StatusUnauthorized, "no API token is loaded yet on this agent", "")
			s.auditLog(r, auth.Principal{Name: "(unauthenticated)"}, http.StatusUnauthorized)
			return
		}
		if set != nil {
			bearer := auth.BearerToken(r)
			tok, ok := set.Lookup(bearer)
			if !ok {
				msg := "missing bearer token: pass --token or set CONSTELLATION_TOKEN"
				if bearer != "" || r.Header.Get("Authorization") != "" {
					msg = "invalid bearer token"
				}
				writeError(w, http.StatusUnauthorized, msg, "")
				s.auditLog(r, auth.Principal{Name: "(unauthenticated)"}, http.StatusUnauthorized)
				return
			}
			p = auth.Principal{Name: tok.Name, Scope: tok.Scope}
		}
		if !p.Allows(need) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %q has the %s scope; %s %s needs %s", p.Name, p.Scope, r.Method, r.URL.Path, need), "")
			s.auditLog(r, p, http.StatusForbidden)
			return
		}
		next(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
		if rec, ok := w.(*statusRecorder); ok {
			s.auditLog(r, p, rec.code)
		}
	}
}

// auditLog records a write (any method but GET and HEAD) or a refused request: who (the token's
// name, never its value), what, the answer. The time is the log line's.
func (s *Server) auditLog(r *http.Request, p auth.Principal, code int) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && code != http.StatusForbidden && code != http.StatusUnauthorized {
		return
	}
	s.audit.Info("api request", "who", p.Name, "scope", string(p.Scope), "method", r.Method,
		"path", r.URL.Path, "code", code, "remote", r.RemoteAddr)
}
