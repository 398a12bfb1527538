// Package httpproxy is the mesh's per-request HTTP proxy (docs/proxy.md): it serves the
// Service ports with appProtocol http and the Services whose upstreams are outside URLs, and
// hides the failures of unequal upstreams from clients.
//
// It owns:
//   - Handler, one listener's request path: the order of upstreams (priority, weighted,
//     leastLatency), one circuit breaker per upstream (github.com/sony/gobreaker/v2, with the
//     open period timed by an injected clock), Retry-After parking, the replay rules (never
//     sent: always retried; declined 403/429/503: any method; ambiguous: idempotent methods,
//     Idempotency-Key or replayUnsafe only; never after the first byte went downstream; bodies
//     above maxReplayBody streamed and not replayed), the retry budget, the first-byte gate for
//     streaming responses, X-Constellation-Upstream and X-Request-Id;
//   - Proxy, the listeners on (virtual IP, port) driven level-triggered by Sync(Table), keeping
//     each upstream's breaker and statistics across syncs;
//   - dialling through an egress proxy (SOCKS5 or HTTP CONNECT) for an upstream's via;
//   - the constellation_proxy_* metrics.
//
// The caller (pkg/mesh/plan, pkg/agent) decides the table: which upstreams, their health and
// via addresses. Like pkg/mesh/proxy it imports no package of ours (not api/v1, not controllers),
// so tests and hack/bench-proxy use it alone.
package httpproxy
