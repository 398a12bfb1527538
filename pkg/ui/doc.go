// Package ui serves the read-only status page every agent shows at /ui/: nodes, Services and
// their replicas, DNS records, leases and recent events, kept live by the API's watch streams.
// The page is plain HTML, CSS and JavaScript embedded with embed: no external asset, no build
// step.
//
// A browser cannot send a bearer header by itself, so the page has a login: the token (typed
// into the form, or passed in the URL fragment, which browsers never send to the server) is
// posted once to /ui/login and exchanged for a session cookie (HttpOnly, SameSite=Strict,
// Secure over TLS, path /ui/). The cookie is a random session id, not the token: it is useless
// outside this agent's /ui/ paths, and it is checked against the tokens in force on every
// request, so a revoked token ends its sessions. The page reads objects through /ui/api/v1/,
// which forwards GET list, get and watch of the kinds the page shows to the API server with the
// session's token; nothing else passes, whatever the token's scope, so the page is read-only by
// construction.
//
// It imports api/v1 and pkg/auth only; the agent wires it (pkg/agent/ui.go).
package ui
