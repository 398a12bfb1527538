// Package e2e holds Constellation's end-to-end scenarios: several nodes as containers, each with
// its own dockerd and agent, on a private Docker network (see package harness and docs/e2e.md).
// The tests are opt-in: they run only with CONSTELLATION_E2E=1 and skip, saying so, otherwise.
package e2e
