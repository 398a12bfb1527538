// Package cloudflare is Constellation's client for Cloudflare DNS: list, create, update and
// delete the records of a zone through github.com/cloudflare/cloudflare-go, pointed at any base
// URL (a local fake in tests).
//
// It owns the request budget: every request, retries included, takes a token from one bucket per
// Client (default 900 per 5 minutes, burst 100, so no 5-minute window can see more than 1,000
// requests, under Cloudflare's 1,200 per token). A 429 pauses the whole Client for the
// Retry-After it carries; 5xx answers, timeouts and network errors back off exponentially. When
// the wait would outlast the caller's deadline the call fails at once with a *RateLimitError, so
// a reconciler can requeue instead of holding its worker.
//
// The API token is a Token, whose String, GoString, LogValue and JSON are redacted; it is read
// from a file that only its owner may read (0600 or 0400) or from a Secret. Errors returned never
// contain it: they are rebuilt from Cloudflare's codes and messages, and a last check replaces
// the token's text wherever it would appear.
//
// It may import api/v1; it must not import controllers or other pkg packages.
package cloudflare
