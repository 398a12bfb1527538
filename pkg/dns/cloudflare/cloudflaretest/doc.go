// Package cloudflaretest holds test support for code that uses pkg/dns/cloudflare: a stepped
// Clock for the client's request budget and Retry-After waits. It is imported by tests only,
// never by the product; it imports only the standard library.
package cloudflaretest
