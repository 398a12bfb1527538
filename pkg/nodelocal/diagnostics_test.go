package nodelocal_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/nodelocal"
	"github.com/constellation-sh/constellation/pkg/store"
)

// TestDiagnosticsRoute: two nodes without Docker serve the diagnostics route with a read token;
// a's answer for b comes from b (forwarded with the caller's token), an unknown node is a 502
// naming it, and a token b does not know is refused by b.
func TestDiagnosticsRoute(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	urls := map[string]string{}
	logger := slog.New(slog.DiscardHandler)
	for _, n := range []string{"a", "b"} {
		toks := []auth.Token{{Name: "dash", Scope: auth.ScopeRead, Secret: readTok}}
		if n == "a" {
			toks = append(toks, auth.Token{Name: "roaming", Scope: auth.ScopeRead, Secret: roamingTok})
		}
		set := auth.NewSet(toks)
		nl, err := nodelocal.New(nodelocal.Config{Node: n, Logger: logger,
			Services: func(context.Context) ([]*v1.Service, error) { return nil, nil },
			Peer: func(_ context.Context, node string) (string, error) {
				if u, ok := urls[node]; ok {
					return u, nil
				}
				return "", errors.New("not a node of this cluster")
			}})
		if err != nil {
			t.Fatal(err)
		}
		handlers := nl.Handlers()
		handlers[nodeapi.DiagnosticsPattern] = nl.DiagnosticsHandler(func(context.Context) nodeapi.Diagnostics {
			return nodeapi.Diagnostics{Node: n, Checks: []nodeapi.Check{{Name: "docker", Status: nodeapi.StatusOK, Message: "disabled"}}}
		})
		scopes := nodelocal.Scopes()
		scopes[nodeapi.DiagnosticsPattern] = nodelocal.DiagnosticsScope
		api, err := apiserver.New(apiserver.Config{Store: st, Tokens: func() *auth.Set { return set }, Logger: logger,
			Gatherer: prometheus.NewRegistry(), Handlers: handlers, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api)
		defer srv.Close()
		urls[n] = srv.URL
	}
	ctx := context.Background()
	c, err := client.New(client.Config{Server: urls["a"], Token: readTok})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		d, err := c.Diagnostics(ctx, n)
		if err != nil || d.Node != n || len(d.Checks) != 1 {
			t.Fatalf("diagnostics of %s through a: %+v, %v", n, d, err)
		}
	}
	if _, err := c.Diagnostics(ctx, "nowhere"); client.StatusCode(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "node nowhere") {
		t.Fatalf("unknown node: %v", err)
	}
	roaming, _ := client.New(client.Config{Server: urls["a"], Token: roamingTok})
	if _, err := roaming.Diagnostics(ctx, "b"); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("a token b does not know: %v, want 401 from b", err)
	}
	if _, err := roaming.Diagnostics(ctx, "a"); err != nil {
		t.Fatalf("the same token on a itself: %v", err)
	}
}
