// Package apiserver serves Constellation's HTTP API over a store.Store: list, get, put
// (create-or-update, compare-and-swap with metadata.resourceVersion, server-side dry run),
// delete, status and watch for every kind, with bearer-token authentication, JSON errors that
// name the failing field, request size limits, /healthz, /readyz and /metrics.
//
// Other parts of the agent (the Traefik provider, the cluster join handler, debug views) are
// mounted through Config.Handlers. The API server never imports controllers.
package apiserver
