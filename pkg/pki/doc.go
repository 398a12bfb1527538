// Package pki is the cluster's certificate authority and everything built on it: the CA itself
// (created once at bootstrap, ECDSA P-256, ten years), node certificates for mutual TLS between
// agents (renewed in place before they expire), the tls.Config values for peers, the API and
// clients, the CA proof that lets a client holding only a bearer token learn the CA without a
// pinned fingerprint, and the join bundle a new member receives.
//
// Every member holds the CA key: it arrives in the JoinBundle over the authenticated join. Any
// member can therefore admit joiners and renew its own certificate while the others are down,
// and there is no CA node to lose. The price is that the CA key is as valuable as the cluster
// secret: a member's data dir is the cluster (see docs/security.md).
//
// Certificates name nodes, not addresses: the trust decision between members is "signed by this
// cluster's CA", and since every member holds the CA key, a host name check would add no
// authority. ClientTLS("") verifies the chain only; ClientTLS(name) checks the name as well.
//
// The package is pure: the standard library only, no files outside the directory it is given,
// no global state, time injected. It must not import anything of ours (a test guards it).
package pki
