package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	cf "github.com/cloudflare/cloudflare-go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultAPIURL is Cloudflare's API v4.
const DefaultAPIURL = "https://api.cloudflare.com/client/v4"

// CloudflareLimit is Cloudflare's documented limit: requests per token per LimitWindow.
const (
	CloudflareLimit = 1200
	LimitWindow     = 5 * time.Minute
)

// Config configures a Client. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// APIURL is the API's base URL. Default DefaultAPIURL.
	APIURL string
	// Requests and Per: the budget refills Requests tokens every Per. Default 900 per 5m.
	Requests int
	Per      time.Duration
	// Burst is the most tokens the budget holds. Default 100. Any 5-minute window sees at most
	// Burst + Requests*(5m/Per) requests (default 1,000); validate refuses more than 1,200.
	Burst int
	// MaxRetries is how many times a request is retried after 429, 5xx, a timeout or a network
	// error (POST is not retried after a timeout or network error: it may have been applied).
	// Default 4.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff after 5xx and timeouts.
	// Default 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// DefaultRetryAfter is the pause after a 429 without a usable Retry-After. Default 60s.
	DefaultRetryAfter time.Duration
	// MaxRetryAfter caps the pause a Retry-After can ask for. Default 5m.
	MaxRetryAfter time.Duration
	// RequestTimeout bounds one attempt. Default 15s.
	RequestTimeout time.Duration
	// PageSize is per_page when listing records. Default 100 (the API's default).
	PageSize int
	// Clock is the time the budget, pauses and backoffs read and sleep on. Default RealClock
	// (the wall clock); tests pass a cloudflaretest.StepClock.
	Clock Clock
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		APIURL: DefaultAPIURL, Requests: 900, Per: 5 * time.Minute, Burst: 100, MaxRetries: 4,
		MinBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second, DefaultRetryAfter: 60 * time.Second,
		MaxRetryAfter: 5 * time.Minute, RequestTimeout: 15 * time.Second, PageSize: 100,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.APIURL == "" {
		c.APIURL = d.APIURL
	}
	if c.Requests == 0 {
		c.Requests = d.Requests
	}
	if c.Per == 0 {
		c.Per = d.Per
	}
	if c.Burst == 0 {
		c.Burst = d.Burst
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = d.MaxRetries
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.DefaultRetryAfter == 0 {
		c.DefaultRetryAfter = d.DefaultRetryAfter
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = d.MaxRetryAfter
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.PageSize == 0 {
		c.PageSize = d.PageSize
	}
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
}

// WorstCaseWindow returns the most requests the budget lets through in any LimitWindow.
func (c Config) WorstCaseWindow() float64 {
	return float64(c.Burst) + float64(c.Requests)*LimitWindow.Seconds()/c.Per.Seconds()
}

func (c Config) validate() error {
	switch {
	case !strings.HasPrefix(c.APIURL, "http://") && !strings.HasPrefix(c.APIURL, "https://"):
		return fmt.Errorf("cloudflare: apiURL must be an http(s) URL, got %q", c.APIURL)
	case c.Requests < 1 || c.Per <= 0 || c.Burst < 1:
		return fmt.Errorf("cloudflare: budget must allow at least one request: requests %d per %s, burst %d", c.Requests, c.Per, c.Burst)
	case c.WorstCaseWindow() > CloudflareLimit:
		return fmt.Errorf("cloudflare: budget of %d per %s with burst %d allows %.0f requests in 5m, over Cloudflare's %d",
			c.Requests, c.Per, c.Burst, c.WorstCaseWindow(), CloudflareLimit)
	case c.MaxRetries < 0 || c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff || c.RequestTimeout <= 0:
		return errors.New("cloudflare: maxRetries, backoff and requestTimeout must be positive, maxBackoff ≥ minBackoff")
	case c.PageSize < 5:
		return fmt.Errorf("cloudflare: pageSize must be at least 5, got %d", c.PageSize)
	}
	return nil
}

// Option sets a rare hook.
type Option func(*Client)

// WithLogger logs retries and pauses to l. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// Record is a DNS record in a zone.
type Record struct {
	ID      string
	Type    string
	Name    string
	Content string
	TTL     int
	Proxied bool
	Comment string
}

// Filter selects records to list. Empty fields match everything; with MatchAny a record matching
// any non-empty field is listed, otherwise it must match all of them.
type Filter struct {
	Name     string
	Type     string
	Content  string
	Comment  string
	MatchAny bool
}

// Errors the Client returns, checked with errors.Is. The returned errors also carry Cloudflare's
// codes and messages (see *APIError).
var (
	ErrAuth           = errors.New("cloudflare: token refused")
	ErrZoneNotFound   = errors.New("cloudflare: zone not found")
	ErrRecordNotFound = errors.New("cloudflare: record not found")
	ErrRecordConflict = errors.New("cloudflare: record conflicts with an existing record")
	ErrInvalid        = errors.New("cloudflare: request refused as invalid")
	ErrUnavailable    = errors.New("cloudflare: unavailable")
)

// APIError is an error answer from Cloudflare.
type APIError struct {
	Op       string
	Status   int
	Codes    []int
	Messages []string
	kind     error
}

func (e *APIError) Error() string {
	parts := make([]string, len(e.Codes))
	for i := range e.Codes {
		parts[i] = fmt.Sprintf("%d %s", e.Codes[i], e.Messages[i])
	}
	return fmt.Sprintf("%s: %v (HTTP %d: %s)", e.Op, e.kind, e.Status, strings.Join(parts, "; "))
}

// Unwrap returns the sentinel error for the answer's kind.
func (e *APIError) Unwrap() error { return e.kind }

// HasCode reports whether Cloudflare answered with code.
func (e *APIError) HasCode(code int) bool {
	for _, c := range e.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// Client talks to one Cloudflare account with one token.
type Client struct {
	api       *cf.API
	cfg       Config
	token     Token
	clock     Clock
	log       *slog.Logger
	base      http.RoundTripper
	budget    *Budget
	transport *transport

	results   *prometheus.CounterVec
	remaining prometheus.GaugeFunc

	mu sync.Mutex
	// guarded by mu:
	zones map[string]string // zone name → id
}

// New returns a Client for token. cfg's zero fields take their defaults.
func New(token Token, cfg Config, opts ...Option) (*Client, error) {
	if token.Empty() {
		return nil, errors.New("cloudflare: no API token")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, token: token, clock: cfg.Clock, log: slog.Default(), base: http.DefaultTransport, zones: map[string]string{}}
	for _, o := range opts {
		o(c)
	}
	c.budget = NewBudget(cfg.Requests, cfg.Per, cfg.Burst, c.clock)
	c.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "constellation_dns_cloudflare_requests_total",
		Help: "Requests sent to the Cloudflare API, retries included, by method and result (ok, client_error, rate_limited, server_error, timeout, network_error).",
	}, []string{"method", "result"})
	c.remaining = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "constellation_dns_cloudflare_budget_remaining",
		Help: "Requests the local budget lets through right now (negative while callers wait).",
	}, c.budget.Remaining)
	c.transport = &transport{base: c.base, budget: c.budget, clock: c.clock, cfg: cfg, log: c.log, results: c.results}
	api, err := cf.NewWithAPIToken(token.value,
		cf.BaseURL(strings.TrimSuffix(cfg.APIURL, "/")),
		cf.HTTPClient(&http.Client{Transport: c.transport}),
		cf.UsingRetryPolicy(0, 0, 0), // the transport retries, honouring Retry-After
		cf.UsingRateLimit(1e6),       // the transport's budget is the limiter
		cf.UserAgent("constellation-dns"),
	)
	if err != nil {
		return nil, fmt.Errorf("cloudflare: new client: %w", c.scrub(err))
	}
	c.api = api
	return c, nil
}

// Collectors returns the Client's metrics, for the agent to register.
func (c *Client) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.results, c.remaining}
}

// BudgetRemaining returns the requests the budget allows right now.
func (c *Client) BudgetRemaining() float64 { return c.budget.Remaining() }

// ZoneID returns the id of the zone named name, cached after the first lookup.
func (c *Client) ZoneID(ctx context.Context, name string) (string, error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	c.mu.Lock()
	id, ok := c.zones[name]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	res, err := c.api.ListZonesContext(ctx, cf.WithZoneFilters(name, "", ""))
	if err != nil {
		return "", c.wrap("look up zone "+name, err)
	}
	for _, z := range res.Result {
		if z.Name == name {
			c.mu.Lock()
			c.zones[name] = z.ID
			c.mu.Unlock()
			return z.ID, nil
		}
	}
	return "", fmt.Errorf("look up zone %s: %w", name, ErrZoneNotFound)
}

// ForgetZone drops a cached zone id (after ErrZoneNotFound on its records).
func (c *Client) ForgetZone(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.zones, strings.TrimSuffix(strings.ToLower(name), "."))
}

// ListRecords returns every record of the zone matching f, following pagination: one call per
// page of Config.PageSize records. Pages are offsets, so a record created or deleted between two
// page requests shifts the rest: a record may then come twice (kept once here: a planner that
// saw it twice would delete the copy, which is the same record) or be missed until the next
// listing (a create that collides with it is refused as a conflict and retried).
func (c *Client) ListRecords(ctx context.Context, zoneID string, f Filter) ([]Record, error) {
	p := cf.ListDNSRecordsParams{Name: f.Name, Type: f.Type, Content: f.Content, Comment: f.Comment}
	if f.MatchAny {
		p.Match = "any"
	}
	var out []Record
	seen := map[string]bool{}
	for page := 1; ; page++ {
		p.ResultInfo = cf.ResultInfo{Page: page, PerPage: c.cfg.PageSize}
		recs, info, err := c.api.ListDNSRecords(ctx, cf.ZoneIdentifier(zoneID), p)
		if err != nil {
			return nil, c.wrap("list records", err)
		}
		for _, r := range recs {
			if seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			out = append(out, fromCF(r))
		}
		if info == nil || len(recs) == 0 || page >= info.TotalPages {
			return out, nil
		}
	}
}

// CreateRecord creates r (its ID is ignored) and returns it as stored.
func (c *Client) CreateRecord(ctx context.Context, zoneID string, r Record) (Record, error) {
	got, err := c.api.CreateDNSRecord(ctx, cf.ZoneIdentifier(zoneID), cf.CreateDNSRecordParams{
		Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL, Proxied: cf.BoolPtr(r.Proxied), Comment: r.Comment,
	})
	if err != nil {
		return Record{}, c.wrap(fmt.Sprintf("create %s record %s", r.Type, r.Name), err)
	}
	return fromCF(got), nil
}

// UpdateRecord sets every field of the record r.ID to r's (PATCH with all fields).
func (c *Client) UpdateRecord(ctx context.Context, zoneID string, r Record) (Record, error) {
	comment := r.Comment
	got, err := c.api.UpdateDNSRecord(ctx, cf.ZoneIdentifier(zoneID), cf.UpdateDNSRecordParams{
		ID: r.ID, Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL, Proxied: cf.BoolPtr(r.Proxied), Comment: &comment,
	})
	if err != nil {
		return Record{}, c.wrap(fmt.Sprintf("update %s record %s (%s)", r.Type, r.Name, r.ID), err)
	}
	return fromCF(got), nil
}

// DeleteRecord deletes the record id. A record already gone is not an error.
func (c *Client) DeleteRecord(ctx context.Context, zoneID, id string) error {
	if err := c.api.DeleteDNSRecord(ctx, cf.ZoneIdentifier(zoneID), id); err != nil {
		err = c.wrap("delete record "+id, err)
		if errors.Is(err, ErrRecordNotFound) {
			return nil
		}
		return err
	}
	return nil
}

func fromCF(r cf.DNSRecord) Record {
	return Record{ID: r.ID, Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL,
		Proxied: r.Proxied != nil && *r.Proxied, Comment: r.Comment}
}

type cfError interface {
	error
	ErrorCodes() []int
	ErrorMessages() []string
}

// wrap turns a cloudflare-go error into ours: a *RateLimitError as is, an *APIError with
// Cloudflare's codes, or a plain error; never one that contains the token.
func (c *Client) wrap(op string, err error) error {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", op, context.Canceled)
		}
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	}
	status := 0
	var kind error
	var (
		req   *cf.RequestError
		nf    *cf.NotFoundError
		authn *cf.AuthenticationError
		authz *cf.AuthorizationError
		rate  *cf.RatelimitError
		svc   *cf.ServiceError
	)
	var ce cfError
	switch {
	case errors.As(err, &req):
		ce, status, kind = req, 400, ErrInvalid
	case errors.As(err, &nf):
		ce, status, kind = nf, 404, ErrRecordNotFound
	case errors.As(err, &authn):
		ce, status, kind = authn, 403, ErrAuth
	case errors.As(err, &authz):
		ce, status, kind = authz, 401, ErrAuth
	case errors.As(err, &rate):
		return &RateLimitError{RetryAfter: c.cfg.DefaultRetryAfter}
	case errors.As(err, &svc):
		ce, status, kind = svc, 500, ErrUnavailable
	default:
		return fmt.Errorf("%s: %w: %s", op, ErrUnavailable, c.scrub(err).Error())
	}
	e := &APIError{Op: op, Status: status, Codes: ce.ErrorCodes(), Messages: ce.ErrorMessages(), kind: kind}
	if len(e.Messages) != len(e.Codes) {
		e.Messages = make([]string, len(e.Codes))
	}
	for i := range e.Messages {
		e.Messages[i] = c.scrubString(e.Messages[i])
	}
	for _, code := range e.Codes {
		switch code {
		case 81057, 81058, 81053, 81054:
			e.kind = ErrRecordConflict
		case 1003, 7003:
			e.kind = ErrZoneNotFound
		case 81044:
			e.kind = ErrRecordNotFound
		case 9109, 10000, 9106, 6003:
			e.kind = ErrAuth
		}
	}
	return e
}

// scrub returns err, or a copy of its text without the token when it contains it.
func (c *Client) scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.token.value) {
		return err
	}
	return errors.New(c.scrubString(err.Error()))
}

func (c *Client) scrubString(s string) string {
	if c.token.value == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token.value, "<redacted>")
}
