package tailscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

// LocalAPIHost is the Host header tailscaled's LocalAPI requires (it answers 403 to any other,
// to keep web pages out through DNS rebinding).
const LocalAPIHost = "local-tailscaled.sock"

// StatusPath is the LocalAPI's status endpoint.
const StatusPath = "/localapi/v0/status"

// BackendState values of the status (ipn.State's names).
const (
	StateRunning          = "Running"
	StateStarting         = "Starting"
	StateNeedsLogin       = "NeedsLogin"
	StateNeedsMachineAuth = "NeedsMachineAuth"
	StateStopped          = "Stopped"
	StateNoState          = "NoState"
)

var (
	// ErrNotRunning: nothing answers on the socket (tailscaled is not installed or not
	// started).
	ErrNotRunning = errors.New("tailscale: tailscaled is not running")
	// ErrAccessDenied: tailscaled refused the caller (403).
	ErrAccessDenied = errors.New("tailscale: access denied by tailscaled")
	// ErrNotConnected: tailscaled runs but is not connected to a tailnet (BackendState is not
	// Running).
	ErrNotConnected = errors.New("tailscale: not connected to a tailnet")
)

// Status is the part of the LocalAPI's status (ipnstate.Status) this package reads.
type Status struct {
	Version      string `json:"Version"`
	BackendState string `json:"BackendState"`
	// AuthURL is where to log in, in state NeedsLogin (when tailscaled has one).
	AuthURL      string                 `json:"AuthURL,omitempty"`
	TailscaleIPs []string               `json:"TailscaleIPs"`
	Self         *PeerStatus            `json:"Self"`
	Peer         map[string]*PeerStatus `json:"Peer"`
	Health       []string               `json:"Health,omitempty"`
	// MagicDNSSuffix is the tailnet's DNS suffix ("tail1234.ts.net").
	MagicDNSSuffix string `json:"MagicDNSSuffix,omitempty"`
}

// PeerStatus is one node of the tailnet (this one as Self).
type PeerStatus struct {
	ID       string   `json:"ID"`
	HostName string   `json:"HostName"`
	DNSName  string   `json:"DNSName"`
	OS       string   `json:"OS,omitempty"`
	Tags     []string `json:"Tags,omitempty"`
	// TailscaleIPs are the node's addresses: an IPv4 in 100.64.0.0/10 and an IPv6 in
	// fd7a:115c:a1e0::/48.
	TailscaleIPs []string `json:"TailscaleIPs"`
	Online       bool     `json:"Online"`
}

// Name is the peer's MagicDNS name without the trailing dot, else its host name.
func (p *PeerStatus) Name() string {
	if n := strings.TrimSuffix(p.DNSName, "."); n != "" {
		return n
	}
	return p.HostName
}

// IPv4 is the peer's Tailscale IPv4 address.
func (p *PeerStatus) IPv4() (netip.Addr, bool) {
	for _, s := range p.TailscaleIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// HasTag reports whether the peer carries tag ("tag:NAME").
func (p *PeerStatus) HasTag(tag string) bool {
	for _, t := range p.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Client talks to tailscaled's LocalAPI on a unix socket.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the LocalAPI listening on socket.
func New(socket string) *Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &Client{socket: socket, hc: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", socket)
			},
			DisableKeepAlives: true,
		},
	}}
}

// Status reads tailscaled's status. It does not judge BackendState: see Status.Connected.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+LocalAPIHost+StatusPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (nothing answers on %s: is tailscaled installed and started? see --tailscale.socket)", ErrNotRunning, c.socket)
		}
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w: cannot open %s: %v (run the agent as root, or make its user tailscaled's operator)", ErrAccessDenied, c.socket, err)
		}
		return nil, fmt.Errorf("tailscale: GET %s on %s: %w", StatusPath, c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("tailscale: GET %s: %w", StatusPath, err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: GET %s: %s (run the agent as root, or make its user tailscaled's operator: tailscale set --operator=USER)", ErrAccessDenied, StatusPath, errorText(body))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("tailscale: GET %s: %s: %s", StatusPath, resp.Status, errorText(body))
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("tailscale: GET %s: not a status: %w", StatusPath, err)
	}
	return &st, nil
}

// errorText is a LocalAPI error body: {"error": "..."} or plain text.
func errorText(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		s = "(no message)"
	}
	return s
}

// Connected returns nil when tailscaled is connected to its tailnet (BackendState Running),
// else an error wrapping ErrNotConnected that says what the operator should do.
func (s *Status) Connected() error {
	switch s.BackendState {
	case StateRunning:
		return nil
	case StateNeedsLogin:
		hint := "run `tailscale up` (with --auth-key for an unattended node)"
		if s.AuthURL != "" {
			hint = "log in at " + s.AuthURL + " or " + hint
		}
		return fmt.Errorf("%w: tailscaled needs a login (BackendState NeedsLogin): %s", ErrNotConnected, hint)
	case StateNeedsMachineAuth:
		return fmt.Errorf("%w: this machine waits for approval in the tailnet's admin console (BackendState NeedsMachineAuth)", ErrNotConnected)
	case StateStopped:
		return fmt.Errorf("%w: Tailscale is stopped on this machine (BackendState Stopped): run `tailscale up`", ErrNotConnected)
	case StateStarting, StateNoState, "":
		return fmt.Errorf("%w: tailscaled is still starting (BackendState %q)", ErrNotConnected, s.BackendState)
	default:
		return fmt.Errorf("%w: BackendState %q", ErrNotConnected, s.BackendState)
	}
}

// SelfIPv4 is this node's Tailscale IPv4, when connected.
func (s *Status) SelfIPv4() (netip.Addr, error) {
	if err := s.Connected(); err != nil {
		return netip.Addr{}, err
	}
	if s.Self != nil {
		if a, ok := s.Self.IPv4(); ok {
			return a, nil
		}
	}
	self := &PeerStatus{TailscaleIPs: s.TailscaleIPs}
	if a, ok := self.IPv4(); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("tailscale: this node has no Tailscale IPv4 address (IPs %v): is IPv4 disabled in the tailnet's policy?", s.TailscaleIPs)
}

// Peer is a discovered peer: its name and Tailscale IPv4.
type Peer struct {
	Name string
	IP   netip.Addr
}

// PeersWithTag returns the online peers carrying tag ("tag:NAME") that have a Tailscale IPv4,
// sorted by name (so every node tries them in the same order). This node is never among them.
func (s *Status) PeersWithTag(tag string) ([]Peer, error) {
	if err := s.Connected(); err != nil {
		return nil, err
	}
	var out []Peer
	for _, p := range s.Peer {
		if p == nil || !p.Online || !p.HasTag(tag) {
			continue
		}
		ip, ok := p.IPv4()
		if !ok {
			continue
		}
		out = append(out, Peer{Name: p.Name(), IP: ip})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, nil
}
