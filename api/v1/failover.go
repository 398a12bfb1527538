package v1

import (
	"net/url"
	"strconv"
	"time"
)

// AppProtocolHTTP on a port makes the mesh proxy it per request (docs/proxy.md): failover
// between replicas, breakers, replay rules, X-Constellation-Upstream.
const AppProtocolHTTP = "http"

// Upstream is one outside endpoint of an image-less Service (docs/proxy.md).
type Upstream struct {
	// URL is http:// or https:// with a host, an optional port and an optional path prefix
	// (prepended to the request's path); no query, no user info. Required.
	URL string `json:"url"`
	// Weight is the upstream's share with order weighted (1-1000). Default 1.
	Weight *int32 `json:"weight,omitempty"`
	// Via sends the upstream's connections through an egress Service: "socks5://<svc>:<port>"
	// or "http://<svc>:<port>" (HTTP CONNECT), dialled at the Service's mesh address. While
	// that Service's condition EgressHealthy is False the upstream is unavailable: it is never
	// dialled directly instead. Default: none (direct).
	Via string `json:"via,omitempty"`
}

// Failover tunes the per-request proxy of a Service's appProtocol http ports and upstreams.
// Every field's default is below and in docs/proxy.md.
type Failover struct {
	// On lists what makes an attempt fail over: statuses ("403", "429", "503", "5xx", "4xx")
	// and conditions ("connectFailure", "reset", "timeout"). Default ["connectFailure",
	// "reset", "timeout", "403", "429", "5xx"]. connectFailure is always implied.
	On []string `json:"on,omitempty"`
	// Order picks the upstream of the first attempt and the next ones: "priority" (list
	// order; replicas: local first, then round robin), "weighted" (random by weight) or
	// "leastLatency" (lowest moving average of time to headers first). Default "priority".
	Order FailoverOrder `json:"order,omitempty"`
	// PerTryTimeout bounds one attempt until its response headers arrive. Default 30s.
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
	// FirstByteTimeout bounds the wait for the first body byte after the headers, while the
	// response is held to allow a failover (SSE, streaming). Default 10s.
	FirstByteTimeout *Duration `json:"firstByteTimeout,omitempty"`
	// MaxAttempts is the most attempts one request makes, the first included (1-10), each on
	// a different upstream. Default 3.
	MaxAttempts *int32 `json:"maxAttempts,omitempty"`
	// RetryBudget is the most extra load retries may add, in percent of the requests of the
	// last 10 s (0-100), plus 100 retries per 10 s window in any case. Default 20.
	RetryBudget *int32 `json:"retryBudget,omitempty"`
	// MaxReplayBody is the largest request body (bytes) held for a replay; a larger one is
	// streamed and only retried when it was never sent. Default 1048576 (1 MiB).
	MaxReplayBody *int64 `json:"maxReplayBody,omitempty"`
	// ReplayUnsafe replays requests of any method after an ambiguous failure (500, 502, 504,
	// timeout, reset). Default false.
	ReplayUnsafe bool `json:"replayUnsafe,omitempty"`
	// Breaker is each upstream's circuit breaker.
	Breaker *Breaker `json:"breaker,omitempty"`
}

// FailoverOrder is failover.order.
type FailoverOrder string

// Failover orders.
const (
	OrderPriority     FailoverOrder = "priority"
	OrderWeighted     FailoverOrder = "weighted"
	OrderLeastLatency FailoverOrder = "leastLatency"
)

// Breaker is a per-upstream circuit breaker: it opens on consecutiveFailures in a row, or when
// failureRatio of at least minRequests requests in the last window failed; open, the upstream
// is skipped for openFor; then halfOpenRequests probes decide.
type Breaker struct {
	// ConsecutiveFailures opens the breaker after this many failures in a row; 0 turns the
	// rule off. Default 5.
	ConsecutiveFailures *int32 `json:"consecutiveFailures,omitempty"`
	// FailureRatio opens it when at least this share (0-1) of the window's requests failed;
	// 0 turns the rule off. Default 0.5.
	FailureRatio *float64 `json:"failureRatio,omitempty"`
	// Window is the rolling window of FailureRatio. Default 10s.
	Window *Duration `json:"window,omitempty"`
	// MinRequests is the fewest requests in the window for FailureRatio to apply. Default 20.
	MinRequests *int32 `json:"minRequests,omitempty"`
	// OpenFor is how long an open breaker skips its upstream. Default 30s.
	OpenFor *Duration `json:"openFor,omitempty"`
	// HalfOpenRequests is how many probes a half-open breaker admits; that many successes
	// close it, one failure opens it again. Default 1.
	HalfOpenRequests *int32 `json:"halfOpenRequests,omitempty"`
}

// ReasonUpstreams is the Ready reason of an upstream Service: no replica runs, every node's mesh
// proxies its upstreams (their breaker states are per node: ctl routes --mesh).
const ReasonUpstreams ConditionReason = "Upstreams"

// Failover defaults (docs/proxy.md).
const (
	DefaultPerTryTimeout       = 30 * time.Second
	DefaultFirstByteTimeout    = 10 * time.Second
	DefaultMaxAttempts         = 3
	DefaultRetryBudget         = 20
	DefaultMaxReplayBody       = 1 << 20
	DefaultConsecutiveFailures = 5
	DefaultFailureRatio        = 0.5
	DefaultBreakerWindow       = 10 * time.Second
	DefaultMinRequests         = 20
	DefaultOpenFor             = 30 * time.Second
	DefaultHalfOpenRequests    = 1
	DefaultUpstreamWeight      = 1
)

// DefaultFailoverOn is failover.on when it is left out.
var DefaultFailoverOn = []string{"connectFailure", "reset", "timeout", "403", "429", "5xx"}

// IsUpstreamService reports whether the Service proxies outside upstreams instead of running
// an image: it has no replicas to place.
func (s *ServiceSpec) IsUpstreamService() bool { return len(s.Upstreams) > 0 }

// HTTPProxied reports whether the mesh serves the Service's port p per request.
func (s *ServiceSpec) HTTPProxied(p ServicePort) bool {
	return p.AppProtocol == AppProtocolHTTP || (s.IsUpstreamService() && p.protocol() == ProtocolTCP)
}

// defaultFailover fills in the failover defaults and, for an upstream Service, replicas 0 and
// appProtocol http on its ports. Called by Service.Default before the generic defaults.
func defaultFailover(sp *ServiceSpec) {
	if sp.IsUpstreamService() {
		if sp.Replicas == nil {
			sp.Replicas = ptr(int32(0))
		}
		for i := range sp.Ports {
			if sp.Ports[i].AppProtocol == "" && sp.Ports[i].protocol() == ProtocolTCP {
				sp.Ports[i].AppProtocol = AppProtocolHTTP
			}
		}
		for i := range sp.Upstreams {
			if sp.Upstreams[i].Weight == nil {
				sp.Upstreams[i].Weight = ptr(int32(DefaultUpstreamWeight))
			}
		}
	}
	http := sp.IsUpstreamService()
	for _, p := range sp.Ports {
		http = http || p.AppProtocol == AppProtocolHTTP
	}
	if !http && sp.Failover == nil {
		return
	}
	if sp.Failover == nil {
		sp.Failover = &Failover{}
	}
	sp.Failover.Default()
}

// Default fills in every failover default.
func (f *Failover) Default() {
	if len(f.On) == 0 {
		f.On = append([]string(nil), DefaultFailoverOn...)
	}
	if f.Order == "" {
		f.Order = OrderPriority
	}
	if f.PerTryTimeout == nil {
		f.PerTryTimeout = &Duration{DefaultPerTryTimeout}
	}
	if f.FirstByteTimeout == nil {
		f.FirstByteTimeout = &Duration{DefaultFirstByteTimeout}
	}
	if f.MaxAttempts == nil {
		f.MaxAttempts = ptr(int32(DefaultMaxAttempts))
	}
	if f.RetryBudget == nil {
		f.RetryBudget = ptr(int32(DefaultRetryBudget))
	}
	if f.MaxReplayBody == nil {
		f.MaxReplayBody = ptr(int64(DefaultMaxReplayBody))
	}
	if f.Breaker == nil {
		f.Breaker = &Breaker{}
	}
	b := f.Breaker
	if b.ConsecutiveFailures == nil {
		b.ConsecutiveFailures = ptr(int32(DefaultConsecutiveFailures))
	}
	if b.FailureRatio == nil {
		b.FailureRatio = ptr(DefaultFailureRatio)
	}
	if b.Window == nil {
		b.Window = &Duration{DefaultBreakerWindow}
	}
	if b.MinRequests == nil {
		b.MinRequests = ptr(int32(DefaultMinRequests))
	}
	if b.OpenFor == nil {
		b.OpenFor = &Duration{DefaultOpenFor}
	}
	if b.HalfOpenRequests == nil {
		b.HalfOpenRequests = ptr(int32(DefaultHalfOpenRequests))
	}
}

// ParseVia splits an upstream's via into its scheme ("socks5" or "http"), the egress Service's
// name and its port.
func ParseVia(via string) (scheme, service string, port int, ok bool) {
	u, err := url.Parse(via)
	if err != nil || (u.Scheme != "socks5" && u.Scheme != "http") || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", 0, false
	}
	host, ps := u.Hostname(), u.Port()
	if !IsDNSLabel(host) || ps == "" {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(ps)
	if err != nil || n < 1 || n > 65535 {
		return "", "", 0, false
	}
	return u.Scheme, host, n, true
}

// validFailoverOn reports whether v is a failover.on value.
func validFailoverOn(v string) bool {
	switch v {
	case "connectFailure", "reset", "timeout", "4xx", "5xx":
		return true
	}
	n, err := strconv.Atoi(v)
	return err == nil && len(v) == 3 && n >= 400 && n <= 599
}

// validateFailover checks spec.upstreams, spec.failover and the appProtocol of the ports. The
// image / upstreams exclusivity is checked here too (Validate skips its image check when
// upstreams are set).
func validateFailover(errs *ErrorList, sp path, spec *ServiceSpec) {
	anyHTTP := false
	for i, p := range spec.Ports {
		switch p.AppProtocol {
		case "":
		case AppProtocolHTTP:
			anyHTTP = true
			if p.protocol() != ProtocolTCP {
				errs.add(sp.child("ports").index(i).child("appProtocol").String(), "http needs protocol tcp, got %q", p.Protocol)
			}
		default:
			errs.add(sp.child("ports").index(i).child("appProtocol").String(), "must be %q or empty, got %q", AppProtocolHTTP, p.AppProtocol)
		}
	}
	if spec.IsUpstreamService() {
		up := sp.child("upstreams")
		if spec.Image != "" {
			errs.add(sp.child("image").String(), "exactly one of image and upstreams")
		}
		if spec.Replicas != nil && *spec.Replicas != 0 {
			errs.add(sp.child("replicas").String(), "must be 0 or unset with upstreams, got %d", *spec.Replicas)
		}
		tcp := 0
		for i, p := range spec.Ports {
			if p.protocol() == ProtocolTCP {
				tcp++
			} else {
				errs.add(sp.child("ports").index(i).child("protocol").String(), "must be tcp with upstreams, got %q", p.Protocol)
			}
		}
		if tcp == 0 {
			errs.add(sp.child("ports").String(), "an upstream Service needs at least one tcp port (where clients reach it on its mesh address)")
		}
		notWith := map[string]bool{
			"command": len(spec.Command) > 0, "args": len(spec.Args) > 0, "env": len(spec.Env) > 0,
			"healthCheck": spec.HealthCheck != nil, "volumes": len(spec.Volumes) > 0, "networks": len(spec.Networks) > 0,
			"resources": spec.Resources != nil, "placement": spec.Placement != nil, "hostAccess": spec.HostAccess,
			"privileged": spec.Privileged, "hostNetwork": spec.HostNetwork, "hostPID": spec.HostPID,
			"capAdd": len(spec.CapAdd) > 0, "capDrop": len(spec.CapDrop) > 0,
		}
		for _, f := range []string{"command", "args", "env", "healthCheck", "volumes", "networks", "resources", "placement",
			"hostAccess", "privileged", "hostNetwork", "hostPID", "capAdd", "capDrop"} {
			if notWith[f] {
				errs.add(sp.child(f).String(), "not allowed with upstreams (no container runs)")
			}
		}
		seen := map[string]bool{}
		for i, u := range spec.Upstreams {
			ip := up.index(i)
			pu, err := url.Parse(u.URL)
			switch {
			case u.URL == "":
				errs.add(ip.child("url").String(), "required")
			case err != nil:
				errs.add(ip.child("url").String(), "invalid URL %q", u.URL)
			case pu.Scheme != "http" && pu.Scheme != "https":
				errs.add(ip.child("url").String(), "must be http:// or https://, got %q", u.URL)
			case pu.Host == "" || pu.Hostname() == "":
				errs.add(ip.child("url").String(), "must have a host, got %q", u.URL)
			case pu.User != nil:
				errs.add(ip.child("url").String(), "must not hold user info (use a header middleware or the upstream's own auth)")
			case pu.RawQuery != "" || pu.Fragment != "":
				errs.add(ip.child("url").String(), "must not have a query or fragment, got %q", u.URL)
			}
			if seen[u.URL] {
				errs.add(ip.child("url").String(), "duplicate upstream %q", u.URL)
			}
			seen[u.URL] = true
			if u.Weight != nil && (*u.Weight < 1 || *u.Weight > 1000) {
				errs.add(ip.child("weight").String(), "must be 1-1000, got %d", *u.Weight)
			}
			if u.Via != "" {
				if _, _, _, ok := ParseVia(u.Via); !ok {
					errs.add(ip.child("via").String(), "must be socks5://<service>:<port> or http://<service>:<port>, got %q", u.Via)
				}
			}
		}
	}
	f := spec.Failover
	if f == nil {
		return
	}
	fp := sp.child("failover")
	if !anyHTTP && !spec.IsUpstreamService() {
		errs.add(fp.String(), "needs a port with appProtocol http, or upstreams")
	}
	for i, v := range f.On {
		if !validFailoverOn(v) {
			errs.add(fp.child("on").index(i).String(), "must be a status 400-599, \"4xx\", \"5xx\", \"connectFailure\", \"reset\" or \"timeout\", got %q", v)
		}
	}
	switch f.Order {
	case "", OrderPriority, OrderWeighted, OrderLeastLatency:
	default:
		errs.add(fp.child("order").String(), "must be %s, %s or %s, got %q", OrderPriority, OrderWeighted, OrderLeastLatency, f.Order)
	}
	validateDuration(errs, fp.child("perTryTimeout"), f.PerTryTimeout, time.Millisecond)
	validateDuration(errs, fp.child("firstByteTimeout"), f.FirstByteTimeout, time.Millisecond)
	if f.MaxAttempts != nil && (*f.MaxAttempts < 1 || *f.MaxAttempts > 10) {
		errs.add(fp.child("maxAttempts").String(), "must be 1-10, got %d", *f.MaxAttempts)
	}
	if f.RetryBudget != nil && (*f.RetryBudget < 0 || *f.RetryBudget > 100) {
		errs.add(fp.child("retryBudget").String(), "must be 0-100 (percent), got %d", *f.RetryBudget)
	}
	if f.MaxReplayBody != nil && (*f.MaxReplayBody < 0 || *f.MaxReplayBody > 1<<30) {
		errs.add(fp.child("maxReplayBody").String(), "must be 0-1073741824 bytes, got %d", *f.MaxReplayBody)
	}
	if b := f.Breaker; b != nil {
		bp := fp.child("breaker")
		if b.ConsecutiveFailures != nil && (*b.ConsecutiveFailures < 0 || *b.ConsecutiveFailures > 10000) {
			errs.add(bp.child("consecutiveFailures").String(), "must be 0-10000, got %d", *b.ConsecutiveFailures)
		}
		if b.FailureRatio != nil && !(*b.FailureRatio >= 0 && *b.FailureRatio <= 1) {
			errs.add(bp.child("failureRatio").String(), "must be 0-1, got %v", *b.FailureRatio)
		}
		validateDuration(errs, bp.child("window"), b.Window, time.Second)
		if b.MinRequests != nil && *b.MinRequests < 0 {
			errs.add(bp.child("minRequests").String(), "must not be negative, got %d", *b.MinRequests)
		}
		validateDuration(errs, bp.child("openFor"), b.OpenFor, time.Millisecond)
		if b.HalfOpenRequests != nil && (*b.HalfOpenRequests < 1 || *b.HalfOpenRequests > 1000) {
			errs.add(bp.child("halfOpenRequests").String(), "must be 1-1000, got %d", *b.HalfOpenRequests)
		}
	}
}
