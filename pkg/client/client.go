package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

// DecodeObject decodes an object the server sent. Unlike v1.Decode it tolerates fields this
// client does not know, so that an older ctl keeps working against a newer server.
func DecodeObject(b []byte) (v1.Object, error) {
	var tm v1.TypeMeta
	if err := json.Unmarshal(b, &tm); err != nil {
		return nil, fmt.Errorf("decode server answer: %w", err)
	}
	info, ok := v1.LookupKind(tm.Kind)
	if !ok {
		return nil, fmt.Errorf("decode server answer: unknown kind %q", tm.Kind)
	}
	obj := info.New()
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, fmt.Errorf("decode server answer: %w", err)
	}
	return obj, nil
}

func objectPath(kind, name string) (string, error) {
	p, err := plural(kind)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errors.New("a name is required")
	}
	return "/apis/v1/" + p + "/" + url.PathEscape(name), nil
}

// Get returns one object. kind may be any name v1.LookupKind accepts.
func (c *Client) Get(ctx context.Context, kind, name string) (v1.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return nil, err
	}
	return DecodeObject(b)
}

// RevealSecret returns a Secret with its values (GET ...?reveal=true). The server allows it to
// admin tokens only and records it in its audit log.
func (c *Client) RevealSecret(ctx context.Context, name string) (*v1.Secret, error) {
	p, err := objectPath(v1.KindSecret, name)
	if err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodGet, p, url.Values{"reveal": {"true"}}, nil)
	if err != nil {
		return nil, err
	}
	obj, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	sec, ok := obj.(*v1.Secret)
	if !ok {
		return nil, fmt.Errorf("secrets/%s: the server answered a %s", name, obj.GetTypeMeta().Kind)
	}
	return sec, nil
}

// ListResult is a list answer.
type ListResult struct {
	// ResourceVersion is the revision the list was read at; a watch from it misses nothing.
	ResourceVersion string
	Items           []v1.Object
}

// List returns the objects of a kind matching the label selector ("" for all).
func (c *Client) List(ctx context.Context, kind, selector string) (*ListResult, error) {
	pl, err := plural(kind)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	b, _, err := c.call(ctx, http.MethodGet, "/apis/v1/"+pl, q, nil)
	if err != nil {
		return nil, err
	}
	var l v1.List
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("decode %s list: %w", pl, err)
	}
	res := &ListResult{ResourceVersion: l.Metadata.ResourceVersion, Items: make([]v1.Object, 0, len(l.Items))}
	for _, raw := range l.Items {
		o, err := DecodeObject(raw)
		if err != nil {
			return nil, err
		}
		res.Items = append(res.Items, o)
	}
	return res, nil
}

// PutOptions tune Put.
type PutOptions struct {
	// DryRun validates and returns the object as it would be stored, changing nothing.
	DryRun bool
}

// PutResult is what Put returns.
type PutResult struct {
	Object v1.Object
	// Created is true when the server answered 201 Created.
	Created bool
}

// Put creates or updates obj (compare-and-swap when it carries metadata.resourceVersion).
func (c *Client) Put(ctx context.Context, obj v1.Object, opts PutOptions) (*PutResult, error) {
	return c.put(ctx, obj, "", opts)
}

// PutStatus replaces obj's status.
func (c *Client) PutStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	r, err := c.put(ctx, obj, "/status", PutOptions{})
	if err != nil {
		return nil, err
	}
	return r.Object, nil
}

func (c *Client) put(ctx context.Context, obj v1.Object, sub string, opts PutOptions) (*PutResult, error) {
	p, err := objectPath(obj.GetTypeMeta().Kind, obj.GetMetadata().Name)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if opts.DryRun {
		q = url.Values{"dryRun": {"true"}}
	}
	b, code, err := c.call(ctx, http.MethodPut, p+sub, q, body)
	if err != nil {
		return nil, err
	}
	out, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	return &PutResult{Object: out, Created: code == http.StatusCreated}, nil
}

// Delete deletes an object. The answer is the object as it was, or as it now is when
// finalizers hold it (deletionTimestamp set); it is nil when the server sent no body.
func (c *Client) Delete(ctx context.Context, kind, name string) (v1.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodDelete, p, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	o, err := DecodeObject(b)
	if err != nil {
		return nil, nil // the delete happened; an unexpected body does not undo it
	}
	return o, nil
}

// Undo rolls a Service back to its previous spec.
func (c *Client) Undo(ctx context.Context, name string) (*v1.Service, error) {
	return c.UndoTo(ctx, name, 0)
}

// UndoTo rolls a Service back to revision rev of its history (0: the previous spec).
func (c *Client) UndoTo(ctx context.Context, name string, rev int64) (*v1.Service, error) {
	p, err := objectPath(v1.KindService, name)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if rev != 0 {
		q = url.Values{"toRevision": {strconv.FormatInt(rev, 10)}}
	}
	b, _, err := c.call(ctx, http.MethodPost, p+"/undo", q, nil)
	if err != nil {
		return nil, err
	}
	o, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	s, ok := o.(*v1.Service)
	if !ok {
		return nil, fmt.Errorf("undo: server answered a %s", o.GetTypeMeta().Kind)
	}
	return s, nil
}

// Route is one router as Traefik is told, from GET /api/routes. The server sends either the
// short form of the API contract ({entryPoints, rule, service, servers}) or the agent's richer
// row (protocol, router, host, path, tls, endpoints); Routes fills in Rule and Servers for both.
type Route struct {
	// Protocol is http, tcp or udp ("" when the server did not say).
	Protocol    string   `json:"protocol,omitempty"`
	Service     string   `json:"service"`
	Router      string   `json:"router,omitempty"`
	EntryPoints []string `json:"entryPoints"`
	// Rule is Traefik's rule ("Host(`a`) && PathPrefix(`/`)"), built from Host and Path when the
	// server sent only those.
	Rule        string `json:"rule,omitempty"`
	Host        string `json:"host,omitempty"`
	Path        string `json:"path,omitempty"`
	TLS         bool   `json:"tls,omitempty"`
	Passthrough bool   `json:"passthrough,omitempty"`
	// Redirect: the router only redirects plain HTTP to HTTPS.
	Redirect bool `json:"redirect,omitempty"`
	// Servers are the healthy endpoints, host:port.
	Servers []string `json:"servers"`
}

// RouteProblem is a route the agent left out of Traefik's configuration, with the field to fix.
type RouteProblem struct {
	Service string `json:"service"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p RouteProblem) String() string {
	return "services/" + p.Service + ": " + p.Field + ": " + p.Message
}

// RouteList is what Routes returns.
type RouteList struct {
	Items    []Route
	Problems []RouteProblem
}

type routeWire struct {
	Route
	Endpoints []string `json:"endpoints"`
}

// Routes returns the routes the cluster serves.
func (c *Client) Routes(ctx context.Context) (*RouteList, error) {
	b, _, err := c.call(ctx, http.MethodGet, "/api/routes", nil, nil)
	if err != nil {
		return nil, err
	}
	var wire struct {
		Items    []routeWire    `json:"items"`
		Problems []RouteProblem `json:"problems"`
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &wire.Items)
	} else {
		err = json.Unmarshal(b, &wire)
	}
	if err != nil {
		return nil, fmt.Errorf("decode routes: %w", err)
	}
	out := &RouteList{Items: make([]Route, 0, len(wire.Items)), Problems: wire.Problems}
	for _, w := range wire.Items {
		r := w.Route
		if r.Servers == nil {
			r.Servers = w.Endpoints
		}
		if r.Rule == "" {
			r.Rule = ruleOf(r)
		}
		out.Items = append(out.Items, r)
	}
	return out, nil
}

// ruleOf rebuilds a readable Traefik rule from a row's host and path.
func ruleOf(r Route) string {
	var parts []string
	switch {
	case r.Protocol == "tcp":
		if r.Host != "" {
			parts = append(parts, "HostSNI(`"+r.Host+"`)")
		}
	case r.Host != "":
		parts = append(parts, "Host(`"+r.Host+"`)")
	}
	if r.Path != "" {
		parts = append(parts, "PathPrefix(`"+r.Path+"`)")
	}
	return strings.Join(parts, " && ")
}

// Healthz returns nil when GET /healthz answers 2xx.
func (c *Client) Healthz(ctx context.Context) error {
	_, _, err := c.call(ctx, http.MethodGet, "/healthz", nil, nil)
	return err
}

// EventType is a watch event's type.
type EventType string

// Watch event types.
const (
	Added      EventType = "ADDED"
	Modified   EventType = "MODIFIED"
	Deleted    EventType = "DELETED"
	ErrorEvent EventType = "ERROR"
)

// Event is one watch event. Object is set for ADDED, MODIFIED and DELETED; Err for ERROR (an
// *Error whose StatusCode is 410 when history was compacted: list again and watch from there).
type Event struct {
	Type   EventType
	Object v1.Object
	Err    error
}

// WatchOptions tune Watch.
type WatchOptions struct {
	// ResourceVersion: events after this revision ("" or "0": from now).
	ResourceVersion string
	// Selector is a label selector; "" for all.
	Selector string
}

// Watch streams changes to objects of a kind. The channel is closed when ctx ends or the
// server ends the stream; a stream that breaks in the middle ends with an ERROR event.
func (c *Client) Watch(ctx context.Context, kind string, opts WatchOptions) (<-chan Event, error) {
	pl, err := plural(kind)
	if err != nil {
		return nil, err
	}
	q := url.Values{"watch": {"true"}}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	if opts.Selector != "" {
		q.Set("labelSelector", opts.Selector)
	}
	resp, err := c.do(ctx, http.MethodGet, "/apis/v1/"+pl, q, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		send := func(ev Event) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			ev, err := decodeEvent(line)
			if err != nil {
				send(Event{Type: ErrorEvent, Err: err})
				return
			}
			if !send(ev) {
				return
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			send(Event{Type: ErrorEvent, Err: &ConnError{Server: c.server, Err: err}})
		}
	}()
	return ch, nil
}

func decodeEvent(line []byte) (Event, error) {
	var raw struct {
		Type   EventType       `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("decode watch event: %w", err)
	}
	switch raw.Type {
	case Added, Modified, Deleted:
		o, err := DecodeObject(raw.Object)
		if err != nil {
			return Event{}, err
		}
		return Event{Type: raw.Type, Object: o}, nil
	case ErrorEvent:
		var eb errorBody
		_ = json.Unmarshal(raw.Object, &eb)
		e := &Error{StatusCode: eb.Code, Message: eb.Error, Field: eb.Field}
		if e.Message == "" {
			e.Message = "watch failed: " + string(raw.Object)
		}
		if e.StatusCode == 0 && strings.Contains(strings.ToLower(e.Message), "compacted") {
			e.StatusCode = http.StatusGone
		}
		return Event{Type: ErrorEvent, Err: e}, nil
	}
	return Event{}, fmt.Errorf("decode watch event: unknown type %q", raw.Type)
}
