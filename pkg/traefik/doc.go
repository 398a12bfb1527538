// Package traefik turns desired state (Services, Secrets for basic auth) and observed state
// (replicas and nodes from gossip) into Traefik v3 dynamic configuration, and serves it to the
// local Traefik through Traefik's HTTP provider (GET /api/providers/traefik).
//
// It owns three things:
//   - Render, a pure function from State to Config: deterministic (same state, same bytes),
//     health-aware (only Ready replicas on alive nodes become servers) and safe (a route Traefik
//     would reject is dropped and reported as a Problem, never rendered).
//   - Provider, which re-renders on change (store watch, View.Changed, a periodic resync), keeps
//     serving the last good configuration when the store or rendering fails, and reports that
//     through Ready, metrics and logs.
//   - AdmitService, the API server's check before a Service is stored: invalid hosts, host+path
//     claimed by another Service, unknown ports.
//
// It imports api/v1, pkg/nodehealth, pkg/observed and pkg/store only; it must not import
// controllers, pkg/agent or pkg/apiserver (they import it), nor Traefik itself (its module is
// far too heavy: the JSON shapes in config.go mirror Traefik's pkg/config/dynamic by hand).
package traefik
