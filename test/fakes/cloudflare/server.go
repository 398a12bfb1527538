// The fake's state (zones, records, tokens, failure switches), its options and how it is started.

package cloudflare

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Record is a DNS record as the API returns it.
type Record struct {
	ID                string          `json:"id"`
	ZoneID            string          `json:"zone_id"`
	ZoneName          string          `json:"zone_name"`
	Name              string          `json:"name"`
	Type              string          `json:"type"`
	Content           string          `json:"content"`
	Proxiable         bool            `json:"proxiable"`
	Proxied           bool            `json:"proxied"`
	TTL               int             `json:"ttl"`
	Locked            bool            `json:"locked"`
	Comment           string          `json:"comment,omitempty"`
	Tags              []string        `json:"tags"`
	Meta              json.RawMessage `json:"meta,omitempty"`
	CreatedOn         time.Time       `json:"created_on"`
	ModifiedOn        time.Time       `json:"modified_on"`
	CommentModifiedOn *time.Time      `json:"comment_modified_on,omitempty"`
}

// Zone is a zone as the API returns it (the fields DNS clients read).
type Zone struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Status      string    `json:"status"`
	Paused      bool      `json:"paused"`
	Type        string    `json:"type"`
	NameServers []string  `json:"name_servers"`
	CreatedOn   time.Time `json:"created_on"`
	ModifiedOn  time.Time `json:"modified_on"`
}

// Call is one request the server received.
type Call struct {
	Time time.Time `json:"time"`
	// Method and Pattern ("GET /zones/{zone_id}/dns_records").
	Method  string `json:"method"`
	Pattern string `json:"pattern"`
	Status  int    `json:"status"`
}

// Key returns "METHOD PATTERN".
func (c Call) Key() string { return c.Method + " " + c.Pattern }

// Server is the fake API. Its zero value is not usable: call New.
type Server struct {
	now func() time.Time

	mu sync.Mutex
	// guarded by mu:
	tokens   map[string][]string // token → zone names it may use (nil: every zone)
	zones    map[string]*zone    // by id
	calls    []Call
	failMode failMode
	latency  time.Duration
	onCall   func(Call)
}

type zone struct {
	Zone
	records map[string]*Record // by id
}

type failMode struct {
	status     int // 0: off, 429 or 5xx
	remaining  int // requests left to fail; <0: until cleared
	retryAfter time.Duration
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the server read time (record timestamps, call log) from now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithToken accepts token; zones, if any, restrict it to those zone names (others answer 10000).
func WithToken(token string, zones ...string) Option {
	return func(s *Server) { s.tokens[token] = zones }
}

// New returns a server with no zones, accepting the tokens given with WithToken.
func New(opts ...Option) *Server {
	s := &Server{now: time.Now, tokens: map[string][]string{}, zones: map[string]*zone{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start serves s on 127.0.0.1 (a random port) until the returned stop is called. baseURL is what
// cloudflare.BaseURL takes.
func (s *Server) Start() (baseURL string, stop func()) {
	ts := httptest.NewServer(s)
	return ts.URL + "/client/v4", ts.Close
}

// Listen serves s on addr (for example "127.0.0.1:0") until stop is called.
func (s *Server) Listen(addr string) (baseURL string, stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/client/v4", srv.Close, nil
}
