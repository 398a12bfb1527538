package nodelocal

import (
	"context"
	"net/http"

	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// DiagnosticsScope is the least scope of nodeapi.DiagnosticsPattern: it reads only.
const DiagnosticsScope = auth.ScopeRead

// DiagnosticsHandler serves GET /node/{node}/diagnostics: run computes this node's checks; a
// request for another node is forwarded to it like every node route. Unlike the Docker routes
// it answers on a node without Docker (the Docker check says so).
func (s *Server) DiagnosticsHandler(run func(ctx context.Context) nodeapi.Diagnostics) http.Handler {
	forward := s.route(nil) // never calls local for another node
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("node") != s.cfg.Node {
			forward.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, run(r.Context()))
	})
}
