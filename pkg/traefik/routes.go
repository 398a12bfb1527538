package traefik

import (
	"regexp"
	"sort"
	"strings"
)

// Route is one row of `ctl routes`: what Traefik is being told for one router.
type Route struct {
	// Protocol is http, tcp or udp.
	Protocol string `json:"protocol"`
	// Service is the Constellation Service the router belongs to.
	Service string `json:"service"`
	// Router is Traefik's router name (Traefik shows it as NAME@http).
	Router      string   `json:"router"`
	EntryPoints []string `json:"entryPoints,omitempty"`
	// Host is the host (http) or SNI (tcp); "*.example.com" for a wildcard, "*" for any SNI.
	Host string `json:"host,omitempty"`
	Path string `json:"path,omitempty"`
	TLS  bool   `json:"tls,omitempty"`
	// Passthrough: Traefik forwards TLS unopened (tcp).
	Passthrough bool `json:"passthrough,omitempty"`
	// Redirect: the router only redirects plain HTTP to HTTPS.
	Redirect bool `json:"redirect,omitempty"`
	// Endpoints are the healthy servers, host:port; empty means Traefik answers 503 (http).
	Endpoints []string `json:"endpoints"`
}

// RouteList is the body of GET /api/routes.
type RouteList struct {
	Items []Route `json:"items"`
	// Problems are routes left out of the configuration (or locked), with the field to fix.
	Problems []Problem `json:"problems,omitempty"`
}

var (
	ruleHostRE  = regexp.MustCompile("(?:Host|HostSNI)\\(`([^`]*)`\\)")
	ruleWildRE  = regexp.MustCompile("(?:HostRegexp|HostSNIRegexp)\\(`\\^\\[\\^\\.\\]\\+\\\\\\.([^`]*)\\$`\\)")
	rulePathRE  = regexp.MustCompile("PathPrefix\\(`([^`]*)`\\)")
	routerSufRE = regexp.MustCompile(`-(http|tcp|udp)-[0-9]+(-redirect)?$`)
)

// Routes turns a rendered configuration into rows, sorted by protocol, host, path and router.
// It reads only the Config, so it works as well on one fetched from /api/providers/traefik.
func Routes(c *Config) []Route {
	var out []Route
	if c == nil {
		return out
	}
	if h := c.HTTP; h != nil {
		for name, r := range h.Routers {
			row := Route{Protocol: "http", Service: serviceOf(name), Router: name, EntryPoints: r.EntryPoints, TLS: r.TLS != nil, Endpoints: []string{}}
			row.Host, row.Path = parseRule(r.Rule)
			row.Redirect = strings.HasSuffix(name, "-redirect")
			if s := h.Services[r.Service]; s != nil && s.LoadBalancer != nil {
				for _, srv := range s.LoadBalancer.Servers {
					row.Endpoints = append(row.Endpoints, strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://"))
				}
			}
			out = append(out, row)
		}
	}
	if t := c.TCP; t != nil {
		for name, r := range t.Routers {
			row := Route{Protocol: "tcp", Service: serviceOf(name), Router: name, EntryPoints: r.EntryPoints, Endpoints: []string{}}
			row.Host, _ = parseRule(r.Rule)
			if r.TLS != nil {
				row.TLS, row.Passthrough = true, r.TLS.Passthrough
			}
			if s := t.Services[r.Service]; s != nil && s.LoadBalancer != nil {
				for _, srv := range s.LoadBalancer.Servers {
					row.Endpoints = append(row.Endpoints, srv.Address)
				}
			}
			out = append(out, row)
		}
	}
	if u := c.UDP; u != nil {
		for name, r := range u.Routers {
			row := Route{Protocol: "udp", Service: serviceOf(name), Router: name, EntryPoints: r.EntryPoints, Endpoints: []string{}}
			if s := u.Services[r.Service]; s != nil && s.LoadBalancer != nil {
				for _, srv := range s.LoadBalancer.Servers {
					row.Endpoints = append(row.Endpoints, srv.Address)
				}
			}
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Protocol != b.Protocol:
			return a.Protocol < b.Protocol
		case a.Host != b.Host:
			return a.Host < b.Host
		case a.Path != b.Path:
			return a.Path < b.Path
		}
		return a.Router < b.Router
	})
	return out
}

func serviceOf(router string) string {
	if loc := routerSufRE.FindStringIndex(router); loc != nil {
		return router[:loc[0]]
	}
	return router
}

func parseRule(rule string) (host, path string) {
	if m := ruleHostRE.FindStringSubmatch(rule); m != nil {
		host = m[1]
	} else if m := ruleWildRE.FindStringSubmatch(rule); m != nil {
		host = "*." + strings.ReplaceAll(m[1], `\.`, ".")
	}
	if m := rulePathRE.FindStringSubmatch(rule); m != nil {
		path = m[1]
	}
	return host, path
}
