// The Client: its Config, the server address scheme, and the request plumbing (do, call, errors)
// every call shares.

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// DefaultServer is where ctl looks for the API when told nothing else.
const DefaultServer = "http://127.0.0.1:7480"

// Config configures a Client.
type Config struct {
	// Server is the API's base URL. Default DefaultServer. "host:port" is read as
	// http://host:port on a loopback address and https://host:port on any other.
	Server string
	// CACert is the PEM certificate of the cluster CA an https server must chain to (ctl keeps
	// it in its config file). Default: fetched from the server on first use, accepted only with
	// a proof that the server knows Token (or when it matches CAFingerprint).
	CACert []byte
	// CAFingerprint pins the cluster CA ("sha256:HEX").
	CAFingerprint string
	// Token is sent as "Authorization: Bearer". Default none.
	Token string
	// HTTPClient sends the requests. Default: a client with a 5s dial timeout and no overall
	// timeout (watches are long-lived; RequestTimeout bounds the others).
	HTTPClient *http.Client
	// RequestTimeout bounds every request but watches. Default 30s; negative: none.
	RequestTimeout time.Duration
	// UserAgent is sent with every request. Default "constellation-client".
	UserAgent string
}

// Client talks to one API server. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	server  string
	token   string
	hc      *http.Client
	timeout time.Duration
	ua      string
	trust   *trust // nil over plain http or with a caller's HTTPClient
	cfg     Config // as given to New
}

// defaultScheme is http for a loopback host (a loopback-only API may stay plain) and https for
// any other: an agent listening off loopback always speaks TLS.
func defaultScheme(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return "http"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "http"
	}
	return "https"
}

// New returns a client for cfg, or an error if the server URL is malformed.
func New(cfg Config) (*Client, error) {
	s := strings.TrimSpace(cfg.Server)
	if s == "" {
		s = DefaultServer
	}
	if !strings.Contains(s, "://") {
		s = defaultScheme(s) + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", cfg.Server, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server %q: scheme must be http or https", cfg.Server)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server %q: no host", cfg.Server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, server: u.String(), token: cfg.Token, hc: cfg.HTTPClient, timeout: cfg.RequestTimeout, ua: cfg.UserAgent, cfg: cfg}
	if u.Scheme == "https" && c.hc == nil {
		t, err := newTrust(c.server, cfg.Token, cfg.CAFingerprint, cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("server %q: %w", cfg.Server, err)
		}
		c.trust = t
		c.hc = &http.Client{Transport: t.transport()}
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 4,
		}}
	}
	if c.timeout == 0 {
		c.timeout = 30 * time.Second
	}
	if c.ua == "" {
		c.ua = "constellation-client"
	}
	return c, nil
}

// Server returns the server's base URL.
func (c *Client) Server() string { return c.server }

func plural(kind string) (string, error) {
	info, ok := v1.LookupKind(kind)
	if !ok || info.Internal() {
		return "", fmt.Errorf("unknown kind %q (known: %s)", kind, v1.KindNames())
	}
	return info.Plural, nil
}

func (c *Client) url(p string, q url.Values) string {
	u := *c.base
	u.Path += p
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one request and returns the response when its status is 2xx; other statuses become
// *Error, transport failures *ConnError. The caller closes the body.
func (c *Client) do(ctx context.Context, method, p string, q url.Values, body []byte) (*http.Response, error) {
	if c.trust != nil {
		if err := c.trust.ensure(ctx); err != nil {
			return nil, err
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(p, q), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &ConnError{Server: c.server, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		err := readError(resp)
		if resp.StatusCode == http.StatusBadRequest && c.base.Scheme == "http" && strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
			https := *c.base
			https.Scheme = "https"
			return nil, &Error{StatusCode: resp.StatusCode, Message: fmt.Sprintf("%s speaks HTTPS (an agent off loopback always does): use --server %s", c.server, https.String())}
		}
		return nil, err
	}
	return resp, nil
}

// errorBody is the API's error envelope.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Code  int    `json:"code,omitempty"`
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{StatusCode: resp.StatusCode}
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		e.Message, e.Field = eb.Error, eb.Field
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 300 && !strings.ContainsAny(s, "<{") {
		e.Message = s
	}
	return e
}

// call is do with RequestTimeout, reading the whole body.
func (c *Client) call(ctx context.Context, method, p string, q url.Values, body []byte) ([]byte, int, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.do(ctx, method, p, q, body)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, &ConnError{Server: c.server, Err: err}
	}
	return b, resp.StatusCode, nil
}

// Healthz returns nil when GET /healthz answers 2xx.
func (c *Client) Healthz(ctx context.Context) error {
	_, _, err := c.call(ctx, http.MethodGet, "/healthz", nil, nil)
	return err
}
