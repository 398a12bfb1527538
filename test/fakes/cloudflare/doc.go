// Package cloudflare is a fake of the Cloudflare API v4, enough of it for DNS: zone lookup by
// name, dns_records list (pagination, filters, match=any|all, order), create, read, update (PUT
// and PATCH) and delete, with record comments, the {success, errors, messages, result,
// result_info} envelope, bearer-token auth and the error codes the real API answers with.
//
// It is a real implementation, not a mock: records live in memory and every request is
// validated the way the real API validates it (content for the type, TTL range, proxiable types,
// comment length, identical records, CNAME exclusivity). Switches make it answer 429 with
// Retry-After, or 500, for some or all requests, add latency, and count calls by method and path
// pattern, so tests can check a client's request budget.
//
// The error codes and messages were taken from responses quoted in public issue trackers
// (81044, 81053, 81054, 81057, 81058, 9005, 9109, 10000, 6003/6111, 7003, 971); where the real
// code is not known the fake picks one and docs/dns.md says so. The real Cloudflare API has never
// been reached from this repository's tests.
//
// It imports nothing of ours and must not: it is the outside world.
package cloudflare
