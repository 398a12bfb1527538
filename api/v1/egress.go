package v1

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// NetworkSpec is spec.network: whose network namespace the containers run in.
type NetworkSpec struct {
	// Mode is "service:<name>": each replica joins the network namespace of a replica of
	// Service <name> on its node (Docker's --network container:<id>, Compose's network_mode:
	// service:<name>). The scheduler places the replicas only where <name> runs. Required.
	Mode string `json:"mode"`
}

// NetworkModeServicePrefix starts spec.network.mode.
const NetworkModeServicePrefix = "service:"

// NetworkOwner returns the Service whose network namespace s's replicas join, if any.
func (s *ServiceSpec) NetworkOwner() (string, bool) {
	if s.Network == nil || !strings.HasPrefix(s.Network.Mode, NetworkModeServicePrefix) {
		return "", false
	}
	name := strings.TrimPrefix(s.Network.Mode, NetworkModeServicePrefix)
	return name, name != ""
}

// EgressCheck is spec.egressCheck: an end-to-end probe of the egress a gateway (a WARP
// container, a VPN client) provides, run by the agent of each node on the gateway replicas it
// runs (docs/egress.md).
type EgressCheck struct {
	// URL is fetched with GET through the egress, e.g. https://cloudflare.com/cdn-cgi/trace.
	// Required; http or https.
	URL string `json:"url"`
	// Expect is a regular expression (RE2) the response body must match, e.g. "warp=(on|plus)".
	// Default "": any body.
	Expect string `json:"expect,omitempty"`
	// MinBytes is the smallest body accepted, to catch MTU black holes that pass small
	// answers and stall large ones. Default 0.
	MinBytes int64 `json:"minBytes,omitempty"`
	// Interval between probes of one replica. Default 10s.
	Interval *Duration `json:"interval,omitempty"`
	// Timeout of one probe (connect, request and body). Default 5s, at most the interval.
	Timeout *Duration `json:"timeout,omitempty"`
	// FailureThreshold failed probes in a row make the egress unhealthy. Default 3.
	FailureThreshold *int32 `json:"failureThreshold,omitempty"`
	// Via is where the probe runs from: "namespace" (default): inside the gateway replica's
	// network namespace, as a container sharing it sees the network; "socks5:<port>" or
	// "http:<port>": from the agent's namespace through the gateway's proxy port (a port name
	// or number of spec.ports), as a consumer using it as a proxy does — the only probe that
	// catches a proxy port unreachable from outside; "namespace+socks5:<port>" /
	// "namespace+http:<port>": through the proxy port at 127.0.0.1 inside the gateway's
	// namespace, as a container sharing it and using the proxy (ALL_PROXY) does.
	Via string `json:"via,omitempty"`
	// Reconnect is the first healing step, run in the gateway container (docker exec) before
	// it is restarted, e.g. ["warp-cli", "--accept-tos", "connect"]. Default none: the first
	// step is a restart.
	Reconnect []string `json:"reconnect,omitempty"`
}

// Egress check defaults.
const (
	DefaultEgressInterval         = 10 * time.Second
	DefaultEgressTimeout          = 5 * time.Second
	DefaultEgressFailureThreshold = 3
	// EgressViaNamespace is the default egressCheck.via.
	EgressViaNamespace = "namespace"
)

// EgressVia is a parsed egressCheck.via.
type EgressVia struct {
	// Scheme is "" for the namespace, else "socks5" or "http".
	Scheme string
	// Port is the gateway's proxy port (a PortRef of spec.ports).
	Port PortRef
	// InNamespace: the proxy is dialled at 127.0.0.1 inside the gateway's namespace
	// ("namespace+socks5:<port>"), as a container sharing it with ALL_PROXY does.
	InNamespace bool
}

// ParseVia parses egressCheck.via ("" is "namespace").
func (c *EgressCheck) ParseVia() (EgressVia, bool) {
	v := c.Via
	in := strings.HasPrefix(v, EgressViaNamespace+"+")
	if in {
		v = strings.TrimPrefix(v, EgressViaNamespace+"+")
	}
	switch {
	case !in && (v == "" || v == EgressViaNamespace):
		return EgressVia{}, true
	case strings.HasPrefix(v, "socks5:"), strings.HasPrefix(v, "http:"):
		scheme, port, _ := strings.Cut(v, ":")
		if port == "" {
			return EgressVia{}, false
		}
		return EgressVia{Scheme: scheme, Port: PortRef(port), InNamespace: in}, true
	}
	return EgressVia{}, false
}

// Defaults returns c with its defaults filled in (a copy; c is not modified).
func (c EgressCheck) Defaults() EgressCheck {
	if c.Interval == nil {
		c.Interval = &Duration{DefaultEgressInterval}
	}
	if c.Timeout == nil {
		c.Timeout = &Duration{min(DefaultEgressTimeout, c.Interval.Duration)}
	}
	if c.FailureThreshold == nil {
		c.FailureThreshold = ptr(int32(DefaultEgressFailureThreshold))
	}
	if c.Via == "" {
		c.Via = EgressViaNamespace
	}
	return c
}

// Egress condition types and reasons.
const (
	// ServiceEgressHealthy is the condition on a Service with an egressCheck: True while the
	// check passes on every replica that runs, False with the last probe result otherwise.
	ServiceEgressHealthy ConditionType = "EgressHealthy"

	// ReasonEgressCheckPassed: the last probes passed.
	ReasonEgressCheckPassed ConditionReason = "EgressCheckPassed"
	// ReasonEgressCheckFailed: a replica failed failureThreshold probes in a row; the message
	// holds the last result ("warp=off", a timeout, a short body...).
	ReasonEgressCheckFailed ConditionReason = "EgressCheckFailed"
	// ReasonEgressUnhealthy is the replica reason of a gateway replica whose egress check fails:
	// it is not ready (no traffic through the mesh or Traefik) while its node heals it.
	ReasonEgressUnhealthy ConditionReason = "EgressUnhealthy"
	// ReasonEgressFailed: the node exhausted its healing steps (reconnect, restarts) on this
	// replica; the scheduler moves it to another node.
	ReasonEgressFailed ConditionReason = "EgressFailed"
	// ReasonEgressGaveUp: no node could run a replica whose egress works; healing stopped
	// (probing goes on, a passing probe recovers).
	ReasonEgressGaveUp ConditionReason = "EgressGaveUp"
	// ReasonEgressPending: no replica has been probed yet.
	ReasonEgressPending ConditionReason = "EgressPending"

	// ReasonGatewayUnhealthy: a replica sharing a gateway's network namespace is not running
	// because no gateway replica on its node is healthy (fail closed); also the reason of its
	// Service's Ready=False.
	ReasonGatewayUnhealthy ConditionReason = "GatewayUnhealthy"
)

// validateEgress checks spec.network and spec.egressCheck of s.
func validateEgress(s *Service) ErrorList {
	var errs ErrorList
	sp := path("spec")
	spec := &s.Spec
	if n := spec.Network; n != nil {
		np := sp.child("network")
		owner, ok := spec.NetworkOwner()
		switch {
		case !ok:
			errs.add(np.child("mode").String(), "must be \"service:<name>\", got %q", n.Mode)
		case !IsDNSLabel(owner):
			errs.add(np.child("mode").String(), "must name a Service, got %q", owner)
		case owner == s.Metadata.Name:
			errs.add(np.child("mode").String(), "a Service cannot share its own network namespace")
		}
		// Docker refuses these with --network container:<id>, and nothing would listen on them:
		// the namespace (its addresses, published ports, routes, mesh names) is the owner's.
		ownerRef := "services/" + owner
		if len(spec.Ports) > 0 {
			errs.add(sp.child("ports").String(), "a Service sharing %s's network namespace has no ports of its own: declare them on %s (they reach this container too)", owner, ownerRef)
		}
		if r := spec.Routes; r != nil && (len(r.HTTP)+len(r.TCP)+len(r.UDP)) > 0 {
			errs.add(sp.child("routes").String(), "a Service sharing %s's network namespace has no routes of its own: route to a port of %s", owner, ownerRef)
		}
		if len(spec.Networks) > 0 {
			errs.add(sp.child("networks").String(), "must be empty with spec.network: the networks are %s's", ownerRef)
		}
		if spec.HostNetwork {
			errs.add(sp.child("hostNetwork").String(), "cannot be combined with spec.network")
		}
		if hc := spec.HealthCheck; hc != nil && (hc.HTTP != nil || hc.TCP != nil) {
			errs.add(sp.child("healthCheck").String(), "only exec checks with spec.network (the container has no address of its own)")
		}
		if spec.EgressCheck != nil {
			errs.add(sp.child("egressCheck").String(), "belongs on the namespace owner %s, not on a Service sharing it", ownerRef)
		}
	}
	if c := spec.EgressCheck; c != nil {
		cp := sp.child("egressCheck")
		if u, err := url.Parse(c.URL); c.URL == "" {
			errs.add(cp.child("url").String(), "required")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add(cp.child("url").String(), "must be an absolute http or https URL, got %q", c.URL)
		}
		if c.Expect != "" {
			if _, err := regexp.Compile(c.Expect); err != nil {
				errs.add(cp.child("expect").String(), "invalid regular expression: %v", err)
			}
		}
		if c.MinBytes < 0 {
			errs.add(cp.child("minBytes").String(), "must not be negative, got %d", c.MinBytes)
		}
		validateDuration(&errs, cp.child("interval"), c.Interval, 100*time.Millisecond)
		validateDuration(&errs, cp.child("timeout"), c.Timeout, 10*time.Millisecond)
		if d := c.Defaults(); d.Timeout.Duration > d.Interval.Duration {
			errs.add(cp.child("timeout").String(), "must not exceed interval (%s), got %s", d.Interval.Duration, d.Timeout.Duration)
		}
		if c.FailureThreshold != nil && (*c.FailureThreshold < 1 || *c.FailureThreshold > 100) {
			errs.add(cp.child("failureThreshold").String(), "must be 1-100, got %d", *c.FailureThreshold)
		}
		if via, ok := c.ParseVia(); !ok {
			errs.add(cp.child("via").String(), "must be \"namespace\", \"socks5:<port>\", \"http:<port>\" or \"namespace+socks5:<port>\", got %q", c.Via)
		} else if via.Scheme != "" {
			if spec.HostNetwork && !via.InNamespace {
				errs.add(cp.child("via").String(), "a proxy port needs the gateway's own namespace (not hostNetwork)")
			}
			if _, ok := spec.ResolvePort(via.Port, ProtocolTCP); !ok {
				errs.add(cp.child("via").String(), "names no tcp port of spec.ports: %q", c.Via)
			}
		}
		for i, a := range c.Reconnect {
			if a == "" {
				errs.add(cp.child("reconnect").index(i).String(), "must not be empty")
			}
		}
	}
	return errs
}
