package traefik

import (
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// AdmitService checks what Traefik needs of svc before the API server stores it, given the other
// Services in the store (svc's own stored version, same name, is ignored): every route renders
// (valid host, path and entry points, an existing port), redirectToHTTPS comes with tls, and no
// route claims a host+path (HTTP, on overlapping entry points), a host SNI on an entry point (TCP)
// or a UDP entry point that another Service, or another route of svc, already holds. It does
// not repeat svc.Validate(); the API server calls both. Secrets are not checked: one may be
// created after the Service, and a missing one locks the route (401) rather than opening it.
func AdmitService(svc *v1.Service, others []*v1.Service) v1.ErrorList {
	stored := make([]*v1.Service, 0, len(others))
	for _, o := range others {
		if o != nil && o.Metadata.Name != svc.Metadata.Name {
			stored = append(stored, o)
		}
	}
	sort.SliceStable(stored, func(i, j int) bool { return olderFirst(stored[i], stored[j]) })
	r := newRenderer(State{})
	r.admission = true
	c := newClaims()
	for _, o := range stored {
		r.service(o, c)
	}
	r.problems = nil
	r.service(svc, c)
	var errs v1.ErrorList
	for _, p := range r.problems {
		errs = append(errs, &v1.FieldError{Field: p.Field, Message: p.Message})
	}
	return errs
}

// claims records who holds each routable key, so that a second holder is refused (admission) or
// left out (rendering).
type claims struct {
	http map[string][]httpClaim // lower(host)|path → holders
	tcp  map[string]string      // entryPoint|lower(sni) → holder
	udp  map[string]string      // entryPoint → holder
}

type httpClaim struct {
	entryPoints []string // empty: every entry point
	holder      string
}

func newClaims() *claims {
	return &claims{http: map[string][]httpClaim{}, tcp: map[string]string{}, udp: map[string]string{}}
}

func holder(svc, field string) string { return "services/" + svc + " " + field }

// claimHTTP takes host+prefix on entry points for holder, or returns who already holds it.
// "" and "/" are the same prefix; host names are case-insensitive.
func (c *claims) claimHTTP(host, prefix string, eps []string, h string) string {
	if prefix == "" {
		prefix = "/"
	}
	key := strings.ToLower(strings.TrimSuffix(host, ".")) + "|" + prefix
	for _, cl := range c.http[key] {
		if overlap(cl.entryPoints, eps) {
			return cl.holder
		}
	}
	c.http[key] = append(c.http[key], httpClaim{entryPoints: eps, holder: h})
	return ""
}

func overlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func (c *claims) claimTCP(ep, sni, h string) string {
	key := ep + "|" + strings.ToLower(strings.TrimSuffix(sni, "."))
	if cur, ok := c.tcp[key]; ok {
		return cur
	}
	c.tcp[key] = h
	return ""
}

func (c *claims) claimUDP(ep, h string) string {
	if cur, ok := c.udp[ep]; ok {
		return cur
	}
	c.udp[ep] = h
	return ""
}
