// Render: the State it reads, the renderer's walk over Services (HTTP, TCP and UDP routes), the
// replicas' addresses, and the Problems it reports instead of failing.

package traefik

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// State is everything a render reads: desired state from the store and observed state from
// gossip. Render does not change it.
type State struct {
	Services []*v1.Service
	// Secrets are looked up by name for basic auth; others are ignored.
	Secrets  []*v1.Secret
	Nodes    []observed.Node
	Replicas []observed.Replica
	// Now and Health judge the nodes (pkg/nodehealth): replicas of a node whose agent is
	// restarting stay servers for the restart grace, since its containers keep running.
	Now    time.Time
	Health nodehealth.Policy
	// EntryPoints, when not empty, are the entry points the local Traefik defines: a route naming
	// another one is left out (Traefik would disable its router). Empty: any name is accepted.
	EntryPoints []string
}

// Problem is a route Render left out (or locked) because Traefik would reject it or it conflicts
// with another Service. Admission refuses all of these; they can still reach the renderer when
// two conflicting applies race on different API servers, or a referenced Secret is deleted.
type Problem struct {
	Service string `json:"service"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string { return "services/" + p.Service + ": " + p.Field + ": " + p.Message }

// Default timings of Traefik's own health check when a route asks for one and the Service has no
// health check timings to borrow.
const (
	defaultHealthCheckInterval = 10 * time.Second
	defaultHealthCheckTimeout  = 5 * time.Second
)

// lockedUser is the basic auth entry rendered when the Secret a route names is missing or
// empty: no password matches "{SHA}!", so the route stays protected (401) instead of opening up
// or disappearing.
const lockedUser = "constellation-locked:{SHA}!"

// Router and service names are "<service>-<protocol>-<route index>": Service names are DNS
// labels and the suffix ends in digits, so two Services can never produce the same name.
func objectName(svc, proto string, i int) string {
	return svc + "-" + proto + "-" + strconv.Itoa(i)
}

// Render turns state into Traefik's dynamic configuration. It is pure and deterministic: the
// same state gives an equal Config (and Encode gives the same bytes). Only replicas that are
// Ready on a node known and alive (or restarting within its grace) become servers; a route
// whose Service has none keeps its router, with an empty server list, so Traefik answers 503
// rather than 404.
func Render(st State) (*Config, []Problem) {
	r := newRenderer(st)
	// The oldest Service wins a conflict, so a newcomer cannot steal a live host.
	svcs := append([]*v1.Service(nil), st.Services...)
	sort.SliceStable(svcs, func(i, j int) bool { return olderFirst(svcs[i], svcs[j]) })
	claims := newClaims()
	for _, s := range svcs {
		r.service(s, claims)
	}
	sort.SliceStable(r.problems, func(i, j int) bool {
		a, b := r.problems[i], r.problems[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Field < b.Field
	})
	return r.cfg, r.problems
}

func newRenderer(st State) *renderer {
	r := &renderer{
		secrets:  make(map[string]*v1.Secret, len(st.Secrets)),
		routable: make(map[string]observed.Node, len(st.Nodes)),
		byName:   make(map[string][]observed.Replica),
		cfg:      &Config{},
	}
	for _, s := range st.Secrets {
		r.secrets[s.Metadata.Name] = s
	}
	if len(st.EntryPoints) > 0 {
		r.entryPoints = make(map[string]bool, len(st.EntryPoints))
		for _, ep := range st.EntryPoints {
			r.entryPoints[ep] = true
		}
	}
	// The data plane follows gossip's verdicts without the disruption brake: an endpoint of a
	// dead node must leave every load balancer within the detection time.
	health := nodehealth.Evaluate(nodehealth.Input{View: st.Nodes, Now: st.Now, Policy: st.Health})
	for _, n := range st.Nodes {
		if v := health.Verdict(n.Name); v == nodehealth.Ready || v == nodehealth.Restarting {
			r.routable[n.Name] = n
		}
	}
	for _, rep := range st.Replicas {
		if _, ok := r.routable[rep.Node]; ok && rep.Ready() {
			r.byName[rep.Service] = append(r.byName[rep.Service], rep)
		}
	}
	return r
}

func olderFirst(a, b *v1.Service) bool {
	ta, tb := a.Metadata.CreationTimestamp, b.Metadata.CreationTimestamp
	switch {
	case ta != nil && tb != nil && !ta.Equal(*tb):
		return ta.Before(*tb)
	case ta != nil && tb == nil:
		return true
	case ta == nil && tb != nil:
		return false
	}
	return a.Metadata.Name < b.Metadata.Name
}

type renderer struct {
	secrets  map[string]*v1.Secret
	routable map[string]observed.Node // nodes whose replicas may be servers
	byName   map[string][]observed.Replica
	cfg      *Config
	problems []Problem
	// admission skips what only matters at render time (Secrets).
	admission bool
	// entryPoints the local Traefik defines; nil: unknown, accept any valid name.
	entryPoints map[string]bool
}

// checkEntryPoint returns why ep cannot be used, or "".
func (r *renderer) checkEntryPoint(ep string) string {
	if !validEntryPoint(ep) {
		return fmt.Sprintf("invalid entry point %q", ep)
	}
	if r.entryPoints != nil && !r.entryPoints[ep] {
		return fmt.Sprintf("entry point %q is not defined in the local Traefik", ep)
	}
	return ""
}

func (r *renderer) problem(svc, field, format string, args ...any) {
	r.problems = append(r.problems, Problem{Service: svc, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (r *renderer) service(s *v1.Service, claims *claims) {
	if s.Spec.Routes == nil {
		return
	}
	name := s.Metadata.Name
	for i := range s.Spec.Routes.HTTP {
		r.httpRoute(s, i, claims)
	}
	for i, t := range s.Spec.Routes.TCP {
		field := "spec.routes.tcp[" + strconv.Itoa(i) + "]"
		rule, err := sniRule(t.HostSNI)
		if err != nil {
			r.problem(name, field+".hostSNI", "%v", err)
			continue
		}
		port, ok := s.Spec.ResolvePort(t.Port, v1.ProtocolTCP)
		if !ok {
			r.problem(name, field+".port", "%s", noPort(t.Port, v1.ProtocolTCP))
			continue
		}
		if msg := r.checkEntryPoint(t.EntryPoint); msg != "" {
			r.problem(name, field+".entryPoint", "%s", msg)
			continue
		}
		if other := claims.claimTCP(t.EntryPoint, t.HostSNI, holder(name, field)); other != "" {
			r.problem(name, field+".hostSNI", "%s on entry point %s is already routed by %s", t.HostSNI, t.EntryPoint, other)
			continue
		}
		id := objectName(name, "tcp", i)
		router := &TCPRouter{EntryPoints: []string{t.EntryPoint}, Service: id, Rule: rule}
		if t.Passthrough {
			router.TLS = &TCPRouterTLS{Passthrough: true}
		} else if t.HostSNI != "*" {
			// Matching a name needs SNI, hence TLS; without passthrough Traefik terminates it.
			router.TLS = &TCPRouterTLS{}
		}
		servers := []TCPServer{}
		for _, a := range r.addresses(name, port) {
			servers = append(servers, TCPServer{Address: a})
		}
		tc := r.tcp()
		tc.Routers[id] = router
		tc.Services[id] = &TCPService{LoadBalancer: &TCPLoadBalancer{Servers: servers}}
	}
	for i, u := range s.Spec.Routes.UDP {
		field := "spec.routes.udp[" + strconv.Itoa(i) + "]"
		port, ok := s.Spec.ResolvePort(u.Port, v1.ProtocolUDP)
		if !ok {
			r.problem(name, field+".port", "%s", noPort(u.Port, v1.ProtocolUDP))
			continue
		}
		if msg := r.checkEntryPoint(u.EntryPoint); msg != "" {
			r.problem(name, field+".entryPoint", "%s", msg)
			continue
		}
		if other := claims.claimUDP(u.EntryPoint, holder(name, field)); other != "" {
			r.problem(name, field+".entryPoint", "udp entry point %s is already routed by %s (Traefik takes one UDP router per entry point)", u.EntryPoint, other)
			continue
		}
		id := objectName(name, "udp", i)
		servers := []UDPServer{}
		for _, a := range r.addresses(name, port) {
			servers = append(servers, UDPServer{Address: a})
		}
		uc := r.udp()
		uc.Routers[id] = &UDPRouter{EntryPoints: []string{u.EntryPoint}, Service: id}
		uc.Services[id] = &UDPService{LoadBalancer: &UDPLoadBalancer{Servers: servers}}
	}
}

// addresses returns the sorted, de-duplicated host:port of every ready replica's published port.
// A replica that publishes on an unspecified host (0.0.0.0, ::, "") is reached at its node's
// advertise address.
func (r *renderer) addresses(svc string, port v1.ServicePort) []string {
	key := observed.PortKey(port.ContainerPort, port.Protocol)
	var out []string
	for _, rep := range r.byName[svc] {
		hp, ok := rep.Ports[key]
		if !ok || hp == "" {
			continue
		}
		host, p, err := net.SplitHostPort(hp)
		if err != nil || p == "" || p == "0" {
			continue
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			adv := r.routable[rep.Node].Advertise
			if h, _, err := net.SplitHostPort(adv); err == nil {
				adv = h
			}
			if adv == "" {
				continue
			}
			host = adv
		}
		out = append(out, net.JoinHostPort(host, p))
	}
	sort.Strings(out)
	return compact(out)
}

// FailoverTransport is the servers transport every HTTP service uses: a dial to a node that
// died (no RST, the SYN is simply lost) gives up after FailoverDialTimeout instead of Traefik's
// 30 s, and the route's retry middleware sends the request to another server. Between a node's
// death and gossip removing its servers (about 1.5 s) requests are then delayed, not failed.
const (
	FailoverTransport   = "constellation-failover"
	FailoverDialTimeout = "1s"
	// DefaultRetryAttempts is the retry middleware's attempts on routes that ask for none.
	DefaultRetryAttempts = 2
)

func (r *renderer) httpConfig() *HTTPConfig {
	if r.cfg.HTTP == nil {
		r.cfg.HTTP = &HTTPConfig{Routers: map[string]*Router{}, Services: map[string]*Service{}, Middlewares: map[string]*Middleware{},
			ServersTransports: map[string]*ServersTransport{
				FailoverTransport: {ForwardingTimeouts: &ForwardingTimeouts{DialTimeout: FailoverDialTimeout}},
			}}
	}
	return r.cfg.HTTP
}

func (r *renderer) tcp() *TCPConfig {
	if r.cfg.TCP == nil {
		r.cfg.TCP = &TCPConfig{Routers: map[string]*TCPRouter{}, Services: map[string]*TCPService{}}
	}
	return r.cfg.TCP
}

func (r *renderer) udp() *UDPConfig {
	if r.cfg.UDP == nil {
		r.cfg.UDP = &UDPConfig{Routers: map[string]*UDPRouter{}, Services: map[string]*UDPService{}}
	}
	return r.cfg.UDP
}
