package compose

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Traefik's Docker provider labels (traefik.http.routers.R.rule and friends) become routes: the
// agent's Traefik provider renders them from the Service (docs/traefik.md), so a route needs no
// labels. A label it cannot express is a Note.

type router struct {
	name        string
	rule        string
	entryPoints []string
	tls         bool
	resolver    string
	service     string
	middlewares []string
	priority    int
	passthrough bool
}

var (
	ruleHostRE   = regexp.MustCompile("^Host\\(\\s*((?:`[^`]+`\\s*,?\\s*)+)\\)$")
	rulePrefixRE = regexp.MustCompile("^PathPrefix\\(\\s*`([^`]+)`\\s*\\)$")
	ruleSNIRE    = regexp.MustCompile("^HostSNI\\(\\s*`([^`]+)`\\s*\\)$")
	backtickRE   = regexp.MustCompile("`([^`]+)`")
)

// parseRule reads Host(`a`[, `b`]) [&& PathPrefix(`/p`)], alternatives joined with ||, into
// (host, pathPrefix) pairs.
func parseRule(rule string) ([][2]string, bool) {
	var out [][2]string
	for _, alt := range strings.Split(rule, "||") {
		alt = strings.TrimSpace(strings.Trim(strings.TrimSpace(alt), "()"))
		if strings.Count(alt, "(") != strings.Count(alt, ")") {
			alt = strings.TrimSpace(alt) + ")"
		}
		var hosts []string
		prefix := ""
		for _, term := range strings.Split(alt, "&&") {
			term = strings.TrimSpace(term)
			if m := ruleHostRE.FindStringSubmatch(term); m != nil {
				for _, h := range backtickRE.FindAllStringSubmatch(m[1], -1) {
					hosts = append(hosts, h[1])
				}
				continue
			}
			if m := rulePrefixRE.FindStringSubmatch(term); m != nil && prefix == "" {
				prefix = m[1]
				continue
			}
			return nil, false
		}
		if len(hosts) == 0 {
			return nil, false
		}
		for _, h := range hosts {
			out = append(out, [2]string{h, prefix})
		}
	}
	return out, len(out) > 0
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// traefik maps the traefik.* labels into spec.routes and returns the other labels.
func (c *converter) traefik(sp string, labels map[string]string, spec *v1.ServiceSpec) map[string]string {
	rest := map[string]string{}
	enabled := true
	type key struct{ proto, name string }
	routers := map[key]*router{}
	svcPorts := map[key]int{}
	mws := map[string]*v1.HTTPMiddlewares{}
	mwPrefix := map[string]bool{}
	lp := func(k string) string { return sp + ".labels." + k }
	getRouter := func(proto, name string) *router {
		k := key{proto, name}
		if routers[k] == nil {
			routers[k] = &router{name: name}
		}
		return routers[k]
	}
	for _, k := range sortedKeys(labels) {
		v := labels[k]
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "traefik.") {
			rest[k] = v
			continue
		}
		parts := strings.Split(k, ".")
		lparts := strings.Split(lk, ".")
		switch {
		case lk == "traefik.enable":
			enabled = strings.EqualFold(v, "true")
		case lk == "traefik.docker.network" || lk == "traefik.swarm.network":
			c.note(lp(k), Changed, "ignored: Traefik reaches replicas on their published mesh endpoints")
		case len(lparts) >= 5 && lparts[2] == "routers":
			proto, name, field := lparts[1], parts[3], strings.Join(lparts[4:], ".")
			if proto != "http" && proto != "tcp" && proto != "udp" {
				c.note(lp(k), Unsupported, "")
				continue
			}
			r := getRouter(proto, name)
			switch field {
			case "rule":
				r.rule = v
			case "entrypoints":
				r.entryPoints = splitList(v)
			case "tls":
				r.tls = strings.EqualFold(v, "true")
			case "tls.certresolver":
				r.tls, r.resolver = true, v
			case "tls.passthrough":
				r.passthrough = strings.EqualFold(v, "true")
			case "service":
				r.service = v
			case "middlewares":
				r.middlewares = splitList(v)
			case "priority":
				n, err := strconv.Atoi(v)
				if err != nil {
					c.note(lp(k), Unsupported, "%q is not a number", v)
				}
				r.priority = n
			default:
				c.note(lp(k), Unsupported, "")
			}
		case len(lparts) == 7 && lparts[2] == "services" && lparts[4] == "loadbalancer" && lparts[5] == "server" && lparts[6] == "port":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				c.note(lp(k), Unsupported, "%q is not a port", v)
				continue
			}
			svcPorts[key{lparts[1], parts[3]}] = n
		case len(lparts) >= 5 && lparts[1] == "http" && lparts[2] == "middlewares":
			name, field := parts[3], strings.Join(lparts[4:], ".")
			m := mws[name]
			if m == nil {
				m = &v1.HTTPMiddlewares{}
				mws[name] = m
			}
			switch field {
			case "redirectscheme.scheme":
				if strings.EqualFold(v, "https") {
					m.RedirectToHTTPS = true
				} else {
					c.note(lp(k), Unsupported, "only https")
				}
			case "redirectscheme.permanent":
			case "stripprefix.prefixes":
				m.StripPrefix = true
				mwPrefix[name] = true
			case "ratelimit.average", "ratelimit.burst":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					c.note(lp(k), Unsupported, "%q is not a number", v)
					continue
				}
				if m.RateLimit == nil {
					m.RateLimit = &v1.RateLimit{}
				}
				if field == "ratelimit.average" {
					m.RateLimit.Average = n
				} else {
					m.RateLimit.Burst = n
				}
			case "retry.attempts":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 10 {
					c.note(lp(k), Unsupported, "%q: 0-10", v)
					continue
				}
				m.RetryAttempts = n
			default:
				if strings.HasPrefix(field, "headers.customrequestheaders.") || strings.HasPrefix(field, "headers.customresponseheaders.") {
					if m.Headers == nil {
						m.Headers = map[string]string{}
					}
					m.Headers[parts[len(parts)-1]] = v
					continue
				}
				c.note(lp(k), Unsupported, "middleware option (supported: redirectscheme, stripprefix, ratelimit, retry, headers.custom*headers)")
			}
		default:
			c.note(lp(k), Unsupported, "")
		}
	}
	if !enabled {
		if len(routers) > 0 {
			c.note(lp("traefik.enable"), Changed, "false: the routers are not mapped")
		}
		return rest
	}
	keys := make([]key, 0, len(routers))
	for k := range routers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].proto != keys[j].proto {
			return keys[i].proto < keys[j].proto
		}
		return keys[i].name < keys[j].name
	})
	// portFor finds the container port a router sends to: its service's loadbalancer port, the
	// only one declared for the protocol, or the Service's first port.
	portFor := func(k key, r *router) v1.PortRef {
		n, ok := 0, false
		if r.service != "" {
			n, ok = svcPorts[key{k.proto, strings.TrimSuffix(r.service, "@docker")}]
		}
		if !ok {
			if p, found := svcPorts[key{k.proto, r.name}]; found {
				n, ok = p, true
			}
		}
		if !ok {
			var only []int
			for sk, p := range svcPorts {
				if sk.proto == k.proto {
					only = append(only, p)
				}
			}
			if len(only) == 1 {
				n, ok = only[0], true
			}
		}
		proto := v1.ProtocolTCP
		if k.proto == "udp" {
			proto = v1.ProtocolUDP
		}
		if !ok {
			for _, p := range spec.Ports {
				if p.Protocol == proto {
					return v1.PortRef(p.Name)
				}
			}
			// Traefik's Docker provider would use the image's single EXPOSEd port; assume 80.
			n = 80
			c.note(sp+".labels", Changed, "router %s: no port known: using container port 80 (set traefik.%s.services.%s.loadbalancer.server.port)", r.name, k.proto, r.name)
		}
		for _, p := range spec.Ports {
			if int(p.ContainerPort) == n && p.Protocol == proto {
				return v1.PortRef(p.Name)
			}
		}
		name := portName("", uint32(n), proto)
		spec.Ports = append(spec.Ports, v1.ServicePort{Name: name, ContainerPort: int32(n), Protocol: proto})
		return v1.PortRef(name)
	}
	for _, k := range keys {
		r := routers[k]
		rp := fmt.Sprintf("%s.labels.traefik.%s.routers.%s", sp, k.proto, r.name)
		switch k.proto {
		case "http":
			pairs, ok := parseRule(r.rule)
			if !ok {
				c.note(rp+".rule", Unsupported, "%q: only Host(...) with an optional && PathPrefix(...), joined by ||", r.rule)
				continue
			}
			port := portFor(k, r)
			var mw *v1.HTTPMiddlewares
			for _, m := range r.middlewares {
				nm := strings.TrimSuffix(strings.TrimSuffix(m, "@docker"), "@swarm")
				def, ok := mws[nm]
				if !ok {
					c.note(rp+".middlewares", Unsupported, "%s: not defined by labels here (only this service's middlewares map)", m)
					continue
				}
				if mw == nil {
					mw = &v1.HTTPMiddlewares{}
				}
				mergeMiddlewares(mw, def)
			}
			for _, pr := range pairs {
				route := v1.HTTPRoute{Host: pr[0], PathPrefix: pr[1], Port: port, EntryPoints: r.entryPoints, Priority: r.priority}
				if !v1.IsDNSName(route.Host, true) {
					c.note(rp+".rule", Unsupported, "host %q", route.Host)
					continue
				}
				if r.tls {
					route.TLS = &v1.RouteTLS{CertResolver: r.resolver}
				}
				if mw != nil {
					m := *mw
					if m.StripPrefix && route.PathPrefix == "" {
						m.StripPrefix = false
						c.note(rp+".middlewares", Changed, "stripprefix left off the route for %s, which has no PathPrefix", route.Host)
					}
					route.Middlewares = &m
				}
				if spec.Routes == nil {
					spec.Routes = &v1.Routes{}
				}
				spec.Routes.HTTP = append(spec.Routes.HTTP, route)
			}
		case "tcp":
			m := ruleSNIRE.FindStringSubmatch(strings.TrimSpace(r.rule))
			if m == nil {
				c.note(rp+".rule", Unsupported, "%q: only HostSNI(`...`)", r.rule)
				continue
			}
			if len(r.entryPoints) != 1 {
				c.note(rp+".entrypoints", Unsupported, "a TCP route needs exactly one entry point, got %d", len(r.entryPoints))
				continue
			}
			if spec.Routes == nil {
				spec.Routes = &v1.Routes{}
			}
			spec.Routes.TCP = append(spec.Routes.TCP, v1.TCPRoute{HostSNI: m[1], EntryPoint: r.entryPoints[0], Port: portFor(k, r),
				Passthrough: r.passthrough && m[1] != "*"})
			if len(r.middlewares) > 0 {
				c.note(rp+".middlewares", Unsupported, "TCP middlewares")
			}
		case "udp":
			if len(r.entryPoints) != 1 {
				c.note(rp+".entrypoints", Unsupported, "a UDP route needs exactly one entry point, got %d", len(r.entryPoints))
				continue
			}
			if spec.Routes == nil {
				spec.Routes = &v1.Routes{}
			}
			spec.Routes.UDP = append(spec.Routes.UDP, v1.UDPRoute{EntryPoint: r.entryPoints[0], Port: portFor(k, r)})
		}
	}
	return rest
}

func mergeMiddlewares(dst, src *v1.HTTPMiddlewares) {
	dst.RedirectToHTTPS = dst.RedirectToHTTPS || src.RedirectToHTTPS
	dst.StripPrefix = dst.StripPrefix || src.StripPrefix
	if src.RateLimit != nil {
		rl := *src.RateLimit
		dst.RateLimit = &rl
	}
	if src.RetryAttempts > 0 {
		dst.RetryAttempts = src.RetryAttempts
	}
	for k, v := range src.Headers {
		if dst.Headers == nil {
			dst.Headers = map[string]string{}
		}
		dst.Headers[k] = v
	}
}
