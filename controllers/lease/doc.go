// Package lease runs role elections: on every node labelled for a role (role=lb by default) the
// agent campaigns for the role's Lease ("lb") with pkg/lease's fenced elector, and stops
// campaigning, releasing the lease, when the label goes away. The DNSRecord whose target.lease is
// "lb" follows the holder (controllers/dns).
//
// The reconciler is level-triggered on the local Node object: it reads the node's labels and
// starts or stops the campaign to match. The elector itself carries the safety argument (see
// pkg/lease and docs/leases.md): a holder that cannot renew stops acting before anyone else can
// take the lease.
//
// It imports api/v1, pkg/store, pkg/lease and controllers/runtime.
package lease
