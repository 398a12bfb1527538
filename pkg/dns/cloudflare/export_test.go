package cloudflare

import "net/http"

// WithTransport sends requests with rt instead of http.DefaultTransport (tests only: the
// product always uses http.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.base = rt } }
