// Package dnstest holds the integration tests of Cloudflare DNS: several agents' worth of lease
// campaigns and DNS controllers on one in-memory store, against the fake Cloudflare API
// (test/fakes/cloudflare). Real Cloudflare is never reached.
package dnstest
