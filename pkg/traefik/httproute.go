// One HTTP route of a Service rendered: its router, its middlewares (rate limit, basic auth,
// headers, strip prefix, retry, the HTTPS redirect), and basic auth's users read from a Secret.

package traefik

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func (r *renderer) httpRoute(s *v1.Service, i int, claims *claims) {
	name := s.Metadata.Name
	h := s.Spec.Routes.HTTP[i]
	field := "spec.routes.http[" + strconv.Itoa(i) + "]"
	rule, err := httpRule(h.Host, h.PathPrefix)
	if err != nil {
		r.problem(name, field, "%v", err)
		return
	}
	port, ok := s.Spec.ResolvePort(h.Port, v1.ProtocolTCP)
	if !ok {
		r.problem(name, field+".port", "%s", noPort(h.Port, v1.ProtocolTCP))
		return
	}
	for j, ep := range h.EntryPoints {
		if msg := r.checkEntryPoint(ep); msg != "" {
			r.problem(name, fmt.Sprintf("%s.entryPoints[%d]", field, j), "%s", msg)
			return
		}
	}
	if other := claims.claimHTTP(h.Host, h.PathPrefix, h.EntryPoints, holder(name, field)); other != "" {
		r.problem(name, field+".host", "%s%s is already routed by %s", h.Host, h.PathPrefix, other)
		return
	}

	id := objectName(name, "http", i)
	hc := r.httpConfig()
	router := &Router{
		EntryPoints: sortedCopy(h.EntryPoints),
		Service:     id,
		Rule:        rule,
		Priority:    h.Priority,
	}
	if h.TLS != nil {
		router.TLS = &RouterTLS{CertResolver: h.TLS.CertResolver}
	}
	if m := h.Middlewares; m != nil {
		add := func(kind string, mw *Middleware) {
			mid := id + "-" + kind
			hc.Middlewares[mid] = mw
			router.Middlewares = append(router.Middlewares, mid)
		}
		// Order: shed load first, then authenticate, then rewrite the request, then retry.
		if m.RateLimit != nil {
			add("ratelimit", &Middleware{RateLimit: &RateLimit{Average: m.RateLimit.Average, Burst: m.RateLimit.Burst}})
		}
		if m.BasicAuthSecret != "" {
			add("basicauth", &Middleware{BasicAuth: &BasicAuth{Users: r.basicAuthUsers(name, field, m.BasicAuthSecret), RemoveHeader: true}})
		}
		if len(m.Headers) > 0 {
			hdrs := make(map[string]string, len(m.Headers))
			for k, v := range m.Headers {
				hdrs[k] = v
			}
			add("headers", &Middleware{Headers: &Headers{CustomRequestHeaders: hdrs}})
		}
		if m.StripPrefix && h.PathPrefix != "" && h.PathPrefix != "/" {
			add("stripprefix", &Middleware{StripPrefix: &StripPrefix{Prefixes: []string{h.PathPrefix}}})
		}
		if m.RetryAttempts > 0 {
			add("retry", &Middleware{Retry: &Retry{Attempts: m.RetryAttempts}})
		}
		if m.RedirectToHTTPS {
			if h.TLS == nil {
				r.problem(name, field+".middlewares.redirectToHTTPS", "needs tls on the route")
			} else {
				// A twin router without TLS catches plain HTTP for the same rule and redirects it.
				rid := id + "-redirect"
				hc.Middlewares[rid] = &Middleware{RedirectScheme: &RedirectScheme{Scheme: "https", Permanent: true}}
				hc.Routers[rid] = &Router{
					EntryPoints: router.EntryPoints,
					Middlewares: []string{rid},
					Service:     id,
					Rule:        rule,
					Priority:    h.Priority,
				}
			}
		}
	}
	if h.Middlewares == nil || h.Middlewares.RetryAttempts == 0 {
		mid := id + "-retry"
		hc.Middlewares[mid] = &Middleware{Retry: &Retry{Attempts: DefaultRetryAttempts}}
		router.Middlewares = append(router.Middlewares, mid)
	}
	hc.Routers[id] = router

	lb := &LoadBalancer{Servers: []Server{}, PassHostHeader: true, ServersTransport: FailoverTransport}
	addrs := r.addresses(name, port)
	if s.Spec.IsUpstreamService() {
		addrs = meshAddresses(s, port)
	}
	for _, a := range addrs {
		lb.Servers = append(lb.Servers, Server{URL: "http://" + a})
	}
	if h.Sticky {
		lb.Sticky = &Sticky{Cookie: &Cookie{Name: "constellation_" + strings.ReplaceAll(id, "-", "_"), Secure: h.TLS != nil, HTTPOnly: true, SameSite: "lax"}}
	}
	if h.HealthCheckPath != "" {
		interval, timeout := defaultHealthCheckInterval, defaultHealthCheckTimeout
		if shc := s.Spec.HealthCheck; shc != nil {
			if shc.Interval != nil && shc.Interval.Duration > 0 {
				interval = shc.Interval.Duration
			}
			if shc.Timeout != nil && shc.Timeout.Duration > 0 {
				timeout = shc.Timeout.Duration
			}
		}
		lb.HealthCheck = &HealthCheck{Path: h.HealthCheckPath, Interval: interval.String(), Timeout: timeout.String()}
	}
	hc.Services[id] = &Service{LoadBalancer: lb}
}

func noPort(ref v1.PortRef, proto v1.Protocol) string {
	if ref == "" {
		return "the service declares no " + string(proto) + " port in spec.ports"
	}
	return fmt.Sprintf("no %s port named or numbered %q in spec.ports", proto, ref)
}

func (r *renderer) basicAuthUsers(svc, field, secret string) []string {
	if r.admission {
		return nil
	}
	sec := r.secrets[secret]
	if sec == nil || len(sec.Spec.Data) == 0 {
		r.problem(svc, field+".middlewares.basicAuthSecret", "secret %q is missing or empty; the route answers 401 to everyone", secret)
		return []string{lockedUser}
	}
	users := make([]string, 0, len(sec.Spec.Data))
	keys := make([]string, 0, len(sec.Spec.Data))
	for user := range sec.Spec.Data {
		keys = append(keys, user)
	}
	sort.Strings(keys) // problems in a stable order
	for _, user := range keys {
		hash := sec.Spec.Data[user]
		if p := basicAuthEntryProblem(user, hash); p != "" {
			// Not rendered: a plain password would be served in the Traefik configuration.
			r.problem(svc, field+".middlewares.basicAuthSecret", "secret %q: %s; skipped", secret, p)
			continue
		}
		users = append(users, user+":"+hash)
	}
	if len(users) == 0 {
		return []string{lockedUser}
	}
	sort.Strings(users)
	return users
}
