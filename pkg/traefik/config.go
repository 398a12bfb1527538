package traefik

import (
	"bytes"
	"encoding/json"
)

// Config is Traefik v3's dynamic configuration, restricted to what Constellation renders. Field
// names follow github.com/traefik/traefik/v3/pkg/config/dynamic. Maps marshal with sorted keys,
// so a Config encodes to the same bytes every time.
type Config struct {
	HTTP *HTTPConfig `json:"http,omitempty"`
	TCP  *TCPConfig  `json:"tcp,omitempty"`
	UDP  *UDPConfig  `json:"udp,omitempty"`
}

// HTTPConfig is the http section.
type HTTPConfig struct {
	Routers           map[string]*Router           `json:"routers,omitempty"`
	Services          map[string]*Service          `json:"services,omitempty"`
	Middlewares       map[string]*Middleware       `json:"middlewares,omitempty"`
	ServersTransports map[string]*ServersTransport `json:"serversTransports,omitempty"`
}

// ServersTransport tunes how Traefik connects to servers.
type ServersTransport struct {
	ForwardingTimeouts *ForwardingTimeouts `json:"forwardingTimeouts,omitempty"`
}

// ForwardingTimeouts bounds the phases of a forwarded request.
type ForwardingTimeouts struct {
	DialTimeout string `json:"dialTimeout,omitempty"`
}

// Router is an HTTP router.
type Router struct {
	EntryPoints []string   `json:"entryPoints,omitempty"`
	Middlewares []string   `json:"middlewares,omitempty"`
	Service     string     `json:"service"`
	Rule        string     `json:"rule"`
	Priority    int        `json:"priority,omitempty"`
	TLS         *RouterTLS `json:"tls,omitempty"`
}

// RouterTLS is a router's tls section. An empty one turns TLS on with the default certificate.
type RouterTLS struct {
	CertResolver string `json:"certResolver,omitempty"`
}

// Service is an HTTP service: always a load balancer here.
type Service struct {
	LoadBalancer *LoadBalancer `json:"loadBalancer"`
}

// LoadBalancer spreads requests over servers. Servers is always present, possibly empty: an
// empty list makes Traefik answer 503 on the service's routers instead of dropping them (404).
type LoadBalancer struct {
	Servers          []Server     `json:"servers"`
	PassHostHeader   bool         `json:"passHostHeader"`
	ServersTransport string       `json:"serversTransport,omitempty"`
	Sticky           *Sticky      `json:"sticky,omitempty"`
	HealthCheck      *HealthCheck `json:"healthCheck,omitempty"`
}

// Server is one upstream URL.
type Server struct {
	URL string `json:"url"`
}

// Sticky is cookie-based session affinity.
type Sticky struct {
	Cookie *Cookie `json:"cookie"`
}

// Cookie is the sticky cookie.
type Cookie struct {
	Name     string `json:"name"`
	Secure   bool   `json:"secure,omitempty"`
	HTTPOnly bool   `json:"httpOnly,omitempty"`
	SameSite string `json:"sameSite,omitempty"`
}

// HealthCheck is Traefik's own active health check of a load balancer's servers.
type HealthCheck struct {
	Path     string `json:"path"`
	Interval string `json:"interval,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
}

// Middleware holds exactly one middleware.
type Middleware struct {
	RedirectScheme *RedirectScheme `json:"redirectScheme,omitempty"`
	StripPrefix    *StripPrefix    `json:"stripPrefix,omitempty"`
	Headers        *Headers        `json:"headers,omitempty"`
	BasicAuth      *BasicAuth      `json:"basicAuth,omitempty"`
	RateLimit      *RateLimit      `json:"rateLimit,omitempty"`
	Retry          *Retry          `json:"retry,omitempty"`
}

// RedirectScheme redirects to another scheme.
type RedirectScheme struct {
	Scheme    string `json:"scheme"`
	Permanent bool   `json:"permanent,omitempty"`
}

// StripPrefix removes path prefixes before forwarding.
type StripPrefix struct {
	Prefixes []string `json:"prefixes"`
}

// Headers sets request headers.
type Headers struct {
	CustomRequestHeaders map[string]string `json:"customRequestHeaders,omitempty"`
}

// BasicAuth checks "user:htpasswd-hash" entries.
type BasicAuth struct {
	Users        []string `json:"users"`
	RemoveHeader bool     `json:"removeHeader,omitempty"`
}

// RateLimit limits the request rate per source.
type RateLimit struct {
	Average int64 `json:"average"`
	Burst   int64 `json:"burst,omitempty"`
}

// Retry retries a request that could not reach a server.
type Retry struct {
	Attempts int `json:"attempts"`
}

// TCPConfig is the tcp section.
type TCPConfig struct {
	Routers  map[string]*TCPRouter  `json:"routers,omitempty"`
	Services map[string]*TCPService `json:"services,omitempty"`
}

// TCPRouter routes TCP connections by SNI.
type TCPRouter struct {
	EntryPoints []string      `json:"entryPoints"`
	Service     string        `json:"service"`
	Rule        string        `json:"rule"`
	TLS         *TCPRouterTLS `json:"tls,omitempty"`
}

// TCPRouterTLS is a TCP router's tls section.
type TCPRouterTLS struct {
	Passthrough bool `json:"passthrough"`
}

// TCPService is a TCP service.
type TCPService struct {
	LoadBalancer *TCPLoadBalancer `json:"loadBalancer"`
}

// TCPLoadBalancer spreads connections over servers.
type TCPLoadBalancer struct {
	Servers []TCPServer `json:"servers"`
}

// TCPServer is one upstream host:port.
type TCPServer struct {
	Address string `json:"address"`
}

// UDPConfig is the udp section.
type UDPConfig struct {
	Routers  map[string]*UDPRouter  `json:"routers,omitempty"`
	Services map[string]*UDPService `json:"services,omitempty"`
}

// UDPRouter sends an entry point's datagrams to a service.
type UDPRouter struct {
	EntryPoints []string `json:"entryPoints"`
	Service     string   `json:"service"`
}

// UDPService is a UDP service.
type UDPService struct {
	LoadBalancer *UDPLoadBalancer `json:"loadBalancer"`
}

// UDPLoadBalancer spreads sessions over servers.
type UDPLoadBalancer struct {
	Servers []UDPServer `json:"servers"`
}

// UDPServer is one upstream host:port.
type UDPServer struct {
	Address string `json:"address"`
}

// Encode returns the configuration as compact JSON ending in a newline (compact: at 1000
// Services indenting would double the size and the encoding time). The same Config always
// encodes to the same bytes: Traefik hashes the body and reloads only when it changes.
func Encode(c *Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
