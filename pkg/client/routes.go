// Routes: the Traefik routes the cluster serves, as the API lists them.

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Route is one router as Traefik is told, from GET /api/routes. The server sends either the
// short form of the API contract ({entryPoints, rule, service, servers}) or the agent's richer
// row (protocol, router, host, path, tls, endpoints); Routes fills in Rule and Servers for both.
type Route struct {
	// Protocol is http, tcp or udp ("" when the server did not say).
	Protocol    string   `json:"protocol,omitempty"`
	Service     string   `json:"service"`
	Router      string   `json:"router,omitempty"`
	EntryPoints []string `json:"entryPoints"`
	// Rule is Traefik's rule ("Host(`a`) && PathPrefix(`/`)"), built from Host and Path when the
	// server sent only those.
	Rule        string `json:"rule,omitempty"`
	Host        string `json:"host,omitempty"`
	Path        string `json:"path,omitempty"`
	TLS         bool   `json:"tls,omitempty"`
	Passthrough bool   `json:"passthrough,omitempty"`
	// Redirect: the router only redirects plain HTTP to HTTPS.
	Redirect bool `json:"redirect,omitempty"`
	// Servers are the healthy endpoints, host:port.
	Servers []string `json:"servers"`
}

// RouteProblem is a route the agent left out of Traefik's configuration, with the field to fix.
type RouteProblem struct {
	Service string `json:"service"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p RouteProblem) String() string {
	return "services/" + p.Service + ": " + p.Field + ": " + p.Message
}

// RouteList is what Routes returns.
type RouteList struct {
	Items    []Route
	Problems []RouteProblem
}

type routeWire struct {
	Route
	Endpoints []string `json:"endpoints"`
}

// Routes returns the routes the cluster serves.
func (c *Client) Routes(ctx context.Context) (*RouteList, error) {
	b, _, err := c.call(ctx, http.MethodGet, "/api/routes", nil, nil)
	if err != nil {
		return nil, err
	}
	var wire struct {
		Items    []routeWire    `json:"items"`
		Problems []RouteProblem `json:"problems"`
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &wire.Items)
	} else {
		err = json.Unmarshal(b, &wire)
	}
	if err != nil {
		return nil, fmt.Errorf("decode routes: %w", err)
	}
	out := &RouteList{Items: make([]Route, 0, len(wire.Items)), Problems: wire.Problems}
	for _, w := range wire.Items {
		r := w.Route
		if r.Servers == nil {
			r.Servers = w.Endpoints
		}
		if r.Rule == "" {
			r.Rule = ruleOf(r)
		}
		out.Items = append(out.Items, r)
	}
	return out, nil
}

// ruleOf rebuilds a readable Traefik rule from a row's host and path.
func ruleOf(r Route) string {
	var parts []string
	switch {
	case r.Protocol == "tcp":
		if r.Host != "" {
			parts = append(parts, "HostSNI(`"+r.Host+"`)")
		}
	case r.Host != "":
		parts = append(parts, "Host(`"+r.Host+"`)")
	}
	if r.Path != "" {
		parts = append(parts, "PathPrefix(`"+r.Path+"`)")
	}
	return strings.Join(parts, " && ")
}
