// Package harness runs Constellation end to end on one machine with Docker alone: N node
// containers on a private Docker network, each with its own dockerd, a constellation-agent built
// from the tree and, on nodes labelled role=lb, a real Traefik pointed at the local agent.
//
// It owns the node image (a `docker import` of an almost empty root with the host's /usr mounted
// read-only: no registry is needed), the fault primitives (kill, stop/start, network disconnect,
// dropped traffic, slowed traffic, dockerd restart, full data disk), a load generator that counts every failed
// request, and the clean-up: every container, network and volume is named and labelled with a run
// id, removed when the cluster closes, also on failure or interrupt, and swept at the next start if
// a run died without cleaning (its process is gone).
//
// It imports the product only through its public surface: the binaries, pkg/client and api/v1.
// Tests using it live in package e2e and are opt-in (CONSTELLATION_E2E=1); see docs/e2e.md.
package harness
