// Package agent assembles one node: the store, gossip and the observed view, the API server with
// the Traefik provider, the lease electors and the controllers. cmd/constellation-agent only
// loads configuration and calls Run; tests start whole agents in one process the same way.
//
// This package wires pkg/* and controllers/*; nothing imports it but cmd/ and tests.
package agent
