package cloudflare

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
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

// AddToken accepts token, restricted to zones if any are given.
func (s *Server) AddToken(token string, zones ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = zones
}

// RevokeToken stops accepting token.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// AddZone creates an active zone and returns its id.
func (s *Server) AddZone(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	id := newID()
	s.zones[id] = &zone{
		Zone: Zone{ID: id, Name: strings.ToLower(name), Status: "active", Type: "full",
			NameServers: []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"}, CreatedOn: now, ModifiedOn: now},
		records: map[string]*Record{},
	}
	return id
}

// Records returns the records of the zone named zoneName, sorted by name, type and content.
func (s *Server) Records(zoneName string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByNameLocked(zoneName)
	if z == nil {
		return nil
	}
	out := make([]Record, 0, len(z.records))
	for _, r := range z.records {
		out = append(out, *r)
	}
	sortRecords(out, "", false)
	return out
}

// PutRecord creates or replaces a record behind the API's back (an operator's edit in the
// dashboard), skipping validation. An empty ID creates a record. It returns the record stored.
func (s *Server) PutRecord(zoneName string, r Record) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByNameLocked(zoneName)
	if z == nil {
		return Record{}, fmt.Errorf("fake cloudflare: no zone %q", zoneName)
	}
	now := s.now().UTC()
	if r.ID == "" {
		r.ID = newID()
		r.CreatedOn = now
	} else if old := z.records[r.ID]; old != nil {
		r.CreatedOn = old.CreatedOn
	}
	r.ZoneID, r.ZoneName, r.ModifiedOn = z.ID, z.Name, now
	r.Name = normalizeName(r.Name, z.Name)
	r.Proxiable = proxiable(r.Type)
	if r.TTL == 0 {
		r.TTL = 1
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	z.records[r.ID] = &r
	return r, nil
}

// DeleteRecord removes a record behind the API's back. It reports whether it existed.
func (s *Server) DeleteRecord(zoneName, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByNameLocked(zoneName)
	if z == nil || z.records[id] == nil {
		return false
	}
	delete(z.records, id)
	return true
}

// FailNext makes the next n requests (n < 0: every request until ClearFailures) answer status
// (429 or 5xx). A 429 carries Retry-After: retryAfter rounded up to whole seconds.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failMode = failMode{status: status, remaining: n, retryAfter: retryAfter}
}

// ClearFailures ends FailNext.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failMode = failMode{}
}

// SetLatency delays every answer by d (to exercise client timeouts).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// OnCall registers f, called (without the server's lock) after every request.
func (s *Server) OnCall(f func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = f
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallCounts returns the number of requests by "METHOD PATTERN".
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, c := range s.calls {
		m[c.Key()]++
	}
	return m
}

// CallCount returns the number of requests whose method matches method ("" for any) and whose
// pattern matches pattern ("" for any).
func (s *Server) CallCount(method, pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if (method == "" || c.Method == method) && (pattern == "" || c.Pattern == pattern) {
			n++
		}
	}
	return n
}

// Writes returns the number of POST, PUT, PATCH and DELETE requests.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method != http.MethodGet {
			n++
		}
	}
	return n
}

// ResetCalls forgets the call log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Path patterns, as counted.
const (
	PatternZones         = "/zones"
	PatternZone          = "/zones/{zone_id}"
	PatternRecords       = "/zones/{zone_id}/dns_records"
	PatternRecord        = "/zones/{zone_id}/dns_records/{dns_record_id}"
	PatternTokenVerify   = "/user/tokens/verify"
	PatternUnknown       = "unknown"
	apiPrefix            = "/client/v4"
	maxBodyBytes         = 1 << 20
	maxRecordsPerPage    = 5000000
	minRecordsPerPage    = 5
	defaultRecordsPage   = 100
	maxZonesPerPage      = 50
	defaultZonesPerPage  = 20
	maxCommentLen        = 100
	maxTXTLen            = 2048
	rateLimitCode        = 971
	rateLimitMessage     = "Please wait and consider throttling your request speed"
	internalErrorCode    = 10001
	internalErrorMessage = "Internal server error"
)

// apiError is one entry of errors.
type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain,omitempty"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

type envelope struct {
	Success    bool        `json:"success"`
	Errors     []apiError  `json:"errors"`
	Messages   []apiError  `json:"messages"`
	Result     any         `json:"result"`
	ResultInfo *resultInfo `json:"result_info,omitempty"`
}

var (
	zoneRE   = regexp.MustCompile(`^/zones/([^/]+)$`)
	recsRE   = regexp.MustCompile(`^/zones/([^/]+)/dns_records$`)
	recRE    = regexp.MustCompile(`^/zones/([^/]+)/dns_records/([^/]+)$`)
	idRE     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	bearerRE = regexp.MustCompile(`^Bearer ([A-Za-z0-9_\-]{1,200})$`)
)

func patternOf(path string) string {
	switch {
	case path == "/zones":
		return PatternZones
	case zoneRE.MatchString(path):
		return PatternZone
	case recsRE.MatchString(path):
		return PatternRecords
	case recRE.MatchString(path):
		return PatternRecord
	case path == "/user/tokens/verify":
		return PatternTokenVerify
	}
	return PatternUnknown
}

// ServeHTTP implements http.Handler. Paths are served with or without the /client/v4 prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, apiPrefix)
	if path == "" {
		path = "/"
	}
	// Read the body first: the server notices a client that gave up only once it has.
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
	}
	status, env, hdr, call := s.handle(r, path)
	s.mu.Lock()
	onCall := s.onCall
	s.mu.Unlock()
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cf-Ray", newID()[:16]+"-FAKE")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(env)
	if onCall != nil {
		onCall(call)
	}
}

func fail(status int, errs ...apiError) (int, envelope, http.Header) {
	return status, envelope{Success: false, Errors: errs, Messages: []apiError{}}, nil
}

func ok(result any, info *resultInfo) (int, envelope, http.Header) {
	return http.StatusOK, envelope{Success: true, Errors: []apiError{}, Messages: []apiError{}, Result: result, ResultInfo: info}, nil
}

// handle answers a request and logs the call in the same critical section, so a test that sees
// the effect of a call also sees the call counted.
func (s *Server) handle(r *http.Request, path string) (status int, env envelope, hdr http.Header, call Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status, env, hdr = s.handleLocked(r, path)
	call = Call{Time: s.now(), Method: r.Method, Pattern: patternOf(path), Status: status}
	s.calls = append(s.calls, call)
	return status, env, hdr, call
}

func (s *Server) handleLocked(r *http.Request, path string) (int, envelope, http.Header) {

	if f := &s.failMode; f.status != 0 && f.remaining != 0 {
		if f.remaining > 0 {
			f.remaining--
		}
		if f.status == http.StatusTooManyRequests {
			st, env, _ := fail(f.status, apiError{Code: rateLimitCode, Message: rateLimitMessage})
			secs := int((f.retryAfter + time.Second - 1) / time.Second)
			return st, env, http.Header{"Retry-After": {strconv.Itoa(secs)}}
		}
		return fail(f.status, apiError{Code: internalErrorCode, Message: internalErrorMessage})
	}

	// Authentication, as the real API: header missing, malformed, or an unknown token.
	auth := r.Header.Get("Authorization")
	if auth == "" && r.Header.Get("X-Auth-Key") == "" {
		return fail(http.StatusBadRequest, apiError{Code: 9106, Message: "Missing X-Auth-Key, X-Auth-Email or Authorization headers"})
	}
	m := bearerRE.FindStringSubmatch(auth)
	if m == nil {
		return fail(http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
			ErrorChain: []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
	}
	allowed, known := s.tokens[m[1]]
	if !known {
		return fail(http.StatusForbidden, apiError{Code: 9109, Message: "Invalid access token"})
	}

	switch pat := patternOf(path); pat {
	case PatternTokenVerify:
		if r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return ok(map[string]string{"id": newID(), "status": "active"}, nil)
	case PatternZones:
		if r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return s.listZonesLocked(r, allowed)
	case PatternZone, PatternRecords, PatternRecord:
		zid := strings.Split(path, "/")[2]
		if !idRE.MatchString(zid) {
			return fail(http.StatusBadRequest, apiError{Code: 7003, Message: fmt.Sprintf("Could not route to %s, perhaps your object identifier is invalid?", path)})
		}
		z := s.zones[zid]
		if z == nil {
			return fail(http.StatusNotFound, apiError{Code: 1003, Message: "Invalid or missing zone id."})
		}
		if !tokenAllows(allowed, z.Name) {
			return fail(http.StatusForbidden, apiError{Code: 10000, Message: "Authentication error"})
		}
		switch pat {
		case PatternZone:
			if r.Method != http.MethodGet {
				return methodNotAllowed()
			}
			return ok(z.Zone, nil)
		case PatternRecords:
			switch r.Method {
			case http.MethodGet:
				return s.listRecordsLocked(r, z)
			case http.MethodPost:
				return s.writeRecordLocked(r, z, nil, false)
			}
			return methodNotAllowed()
		default:
			rid := strings.Split(path, "/")[4]
			rec := z.records[rid]
			if rec == nil {
				return fail(http.StatusNotFound, apiError{Code: 81044, Message: "Record does not exist."})
			}
			switch r.Method {
			case http.MethodGet:
				return ok(rec, nil)
			case http.MethodPut:
				return s.writeRecordLocked(r, z, rec, false)
			case http.MethodPatch:
				return s.writeRecordLocked(r, z, rec, true)
			case http.MethodDelete:
				delete(z.records, rid)
				return ok(map[string]string{"id": rid}, nil)
			}
			return methodNotAllowed()
		}
	}
	return fail(http.StatusNotFound, apiError{Code: 7000, Message: "No route for that URI"})
}

func methodNotAllowed() (int, envelope, http.Header) {
	return fail(http.StatusMethodNotAllowed, apiError{Code: 10405, Message: "Method not allowed for this authentication scheme"})
}

func tokenAllows(allowed []string, zoneName string) bool {
	if allowed == nil {
		return true
	}
	for _, z := range allowed {
		if strings.EqualFold(z, zoneName) {
			return true
		}
	}
	return false
}

func (s *Server) zoneByNameLocked(name string) *zone {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, z := range s.zones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

// paging reads page and per_page, answering the real API's errors for bad values.
func paging(q map[string][]string, def, min, max int) (page, perPage int, errs []apiError) {
	page, perPage = 1, def
	if v := first(q, "page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, apiError{Code: 1004, Message: "page must be an integer greater than or equal to 1"})
		} else {
			page = n
		}
	}
	if v := first(q, "per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("per_page must be an integer between %d and %d", min, max)})
		} else {
			perPage = n
		}
	}
	return page, perPage, errs
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func paginate[T any](items []T, page, perPage int) ([]T, *resultInfo) {
	total := len(items)
	pages := (total + perPage - 1) / perPage
	start := (page - 1) * perPage
	if start > total {
		start = total
	}
	end := min(start+perPage, total)
	out := items[start:end]
	return out, &resultInfo{Page: page, PerPage: perPage, Count: len(out), TotalCount: total, TotalPages: pages}
}

func (s *Server) listZonesLocked(r *http.Request, allowed []string) (int, envelope, http.Header) {
	q := r.URL.Query()
	page, perPage, errs := paging(q, defaultZonesPerPage, 5, maxZonesPerPage)
	if len(errs) > 0 {
		return fail(http.StatusBadRequest, errs...)
	}
	name := strings.TrimSuffix(strings.ToLower(first(q, "name")), ".")
	status := first(q, "status")
	zs := []Zone{}
	for _, z := range s.zones {
		if (name == "" || z.Name == name) && (status == "" || z.Status == status) && tokenAllows(allowed, z.Name) {
			zs = append(zs, z.Zone)
		}
	}
	sort.Slice(zs, func(i, j int) bool { return zs[i].Name < zs[j].Name })
	out, info := paginate(zs, page, perPage)
	return ok(out, info)
}

// textFilter is one of the API's string filters: exact, or field.exact|contains|startswith|endswith.
type textFilter struct {
	field, op, value string
}

func (f textFilter) match(v string) bool {
	v, want := strings.ToLower(v), strings.ToLower(f.value)
	switch f.op {
	case "exact", "":
		return v == want
	case "contains":
		return strings.Contains(v, want)
	case "startswith":
		return strings.HasPrefix(v, want)
	case "endswith":
		return strings.HasSuffix(v, want)
	case "present":
		return v != ""
	case "absent":
		return v == ""
	}
	return false
}

func (s *Server) listRecordsLocked(r *http.Request, z *zone) (int, envelope, http.Header) {
	q := r.URL.Query()
	page, perPage, errs := paging(q, defaultRecordsPage, minRecordsPerPage, maxRecordsPerPage)
	matchAny := false
	switch first(q, "match") {
	case "", "all":
	case "any":
		matchAny = true
	default:
		errs = append(errs, apiError{Code: 1004, Message: "match must be one of all, any"})
	}
	var filters []func(*Record) bool
	for key, vals := range q {
		if len(vals) == 0 {
			continue
		}
		field, op, _ := strings.Cut(key, ".")
		val := vals[0]
		switch field {
		case "name", "content", "comment":
			switch op {
			case "", "exact", "contains", "startswith", "endswith":
			case "present", "absent":
				if field != "comment" {
					errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("unknown filter %q", key)})
					continue
				}
			default:
				errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("unknown filter %q", key)})
				continue
			}
			if field == "name" && (op == "" || op == "exact") {
				val = normalizeName(val, z.Name)
			}
			f := textFilter{field, op, val}
			filters = append(filters, func(rec *Record) bool {
				switch f.field {
				case "name":
					return f.match(rec.Name)
				case "content":
					return f.match(rec.Content)
				}
				return f.match(rec.Comment)
			})
		case "type":
			t := strings.ToUpper(val)
			filters = append(filters, func(rec *Record) bool { return rec.Type == t })
		case "proxied":
			b, err := strconv.ParseBool(val)
			if err != nil {
				errs = append(errs, apiError{Code: 1004, Message: "proxied must be a boolean"})
				continue
			}
			filters = append(filters, func(rec *Record) bool { return rec.Proxied == b })
		case "page", "per_page", "match", "order", "direction", "tag", "tag-match", "search":
		default:
			errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("unknown filter %q", key)})
		}
	}
	order := first(q, "order")
	switch order {
	case "", "type", "name", "content", "ttl", "proxied":
	default:
		errs = append(errs, apiError{Code: 1004, Message: "order must be one of type, name, content, ttl, proxied"})
	}
	desc := first(q, "direction") == "desc"
	if len(errs) > 0 {
		return fail(http.StatusBadRequest, errs...)
	}
	recs := []Record{}
	for _, rec := range z.records {
		if matches(rec, filters, matchAny) {
			recs = append(recs, *rec)
		}
	}
	sortRecords(recs, order, desc)
	out, info := paginate(recs, page, perPage)
	return ok(out, info)
}

func matches(rec *Record, filters []func(*Record) bool, any bool) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if f(rec) == any {
			return any
		}
	}
	return !any
}

func sortRecords(recs []Record, order string, desc bool) {
	key := func(r Record) string {
		switch order {
		case "name":
			return r.Name
		case "content":
			return r.Content
		case "ttl":
			return fmt.Sprintf("%010d", r.TTL)
		case "proxied":
			return strconv.FormatBool(r.Proxied)
		}
		return r.Type
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if ka, kb := key(a), key(b); ka != kb {
			return (ka < kb) != desc
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Content != b.Content {
			return a.Content < b.Content
		}
		return a.ID < b.ID
	})
}

// recordBody is a create/update request. Pointers tell PATCH what was sent.
type recordBody struct {
	Type     *string         `json:"type"`
	Name     *string         `json:"name"`
	Content  *string         `json:"content"`
	TTL      *int            `json:"ttl"`
	Proxied  *bool           `json:"proxied"`
	Comment  *string         `json:"comment"`
	Tags     []string        `json:"tags"`
	Priority *int            `json:"priority"`
	Data     json.RawMessage `json:"data"`
	Settings json.RawMessage `json:"settings"`
	Meta     json.RawMessage `json:"meta"`
	ID       string          `json:"id"`
}

// decodeRecordBody decodes a create or update request body as the fake does.
func decodeRecordBody(b []byte) (recordBody, error) {
	var body recordBody
	err := json.Unmarshal(b, &body)
	return body, err
}

func (s *Server) writeRecordLocked(r *http.Request, z *zone, cur *Record, patch bool) (int, envelope, http.Header) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return fail(http.StatusBadRequest, apiError{Code: 9207, Message: "Request body is invalid."})
	}
	body, err := decodeRecordBody(raw)
	if err != nil {
		return fail(http.StatusBadRequest, apiError{Code: 9207, Message: "Request body is invalid."})
	}
	var next Record
	if cur != nil && patch {
		next = *cur
	} else if cur != nil {
		next = Record{ID: cur.ID, CreatedOn: cur.CreatedOn, Comment: "", Tags: []string{}}
	} else {
		next = Record{TTL: 1, Tags: []string{}}
	}
	if body.Type != nil {
		next.Type = strings.ToUpper(*body.Type)
	}
	if body.Name != nil {
		next.Name = *body.Name
	}
	if body.Content != nil {
		next.Content = *body.Content
	}
	if body.TTL != nil {
		next.TTL = *body.TTL
	} else if !patch {
		next.TTL = 1
	}
	if body.Proxied != nil {
		next.Proxied = *body.Proxied
	} else if !patch {
		next.Proxied = false
	}
	commentChanged := false
	if body.Comment != nil {
		commentChanged = next.Comment != *body.Comment
		next.Comment = *body.Comment
	}
	if body.Tags != nil {
		next.Tags = body.Tags
	}
	if errs := validate(&next, z.Name); len(errs) > 0 {
		return fail(http.StatusBadRequest, errs...)
	}
	if e := conflict(z, &next); e != nil {
		return fail(http.StatusBadRequest, *e)
	}
	now := s.now().UTC()
	if cur == nil {
		next.ID = newID()
		next.CreatedOn = now
	}
	next.ZoneID, next.ZoneName, next.ModifiedOn = z.ID, z.Name, now
	next.Proxiable = proxiable(next.Type)
	if next.Proxied {
		next.TTL = 1 // proxied records always have automatic TTL
	}
	if commentChanged || (cur == nil && next.Comment != "") {
		next.CommentModifiedOn = &now
	}
	z.records[next.ID] = &next
	return ok(next, nil)
}

// validate checks a record the way the API does and normalizes name and content.
func validate(r *Record, zoneName string) []apiError {
	var errs []apiError
	switch r.Type {
	case "A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV":
	case "":
		return []apiError{{Code: 9101, Message: "DNS record type is required."}}
	default:
		return []apiError{{Code: 9101, Message: fmt.Sprintf("DNS record type %q is invalid.", r.Type)}}
	}
	if strings.TrimSpace(r.Name) == "" {
		errs = append(errs, apiError{Code: 9000, Message: "DNS name is invalid."})
	} else {
		r.Name = normalizeName(r.Name, zoneName)
		if len(r.Name) > 253 || !hostnameRE.MatchString(r.Name) {
			errs = append(errs, apiError{Code: 9000, Message: "DNS name is invalid."})
		}
	}
	switch r.Type {
	case "A":
		ip := net.ParseIP(r.Content)
		if ip == nil || ip.To4() == nil || strings.Contains(r.Content, ":") {
			errs = append(errs, apiError{Code: 9005, Message: "Content for A record must be a valid IPv4 address."})
		} else {
			r.Content = ip.To4().String()
		}
	case "AAAA":
		ip := net.ParseIP(r.Content)
		if ip == nil || !strings.Contains(r.Content, ":") {
			errs = append(errs, apiError{Code: 9006, Message: "Content for AAAA record must be a valid IPv6 address."})
		} else {
			r.Content = ip.String()
		}
	case "CNAME":
		c := strings.TrimSuffix(strings.ToLower(r.Content), ".")
		if len(c) == 0 || len(c) > 253 || !hostnameRE.MatchString(c) {
			errs = append(errs, apiError{Code: 9007, Message: "Content for CNAME record is invalid."})
		} else {
			r.Content = c
		}
	case "TXT":
		if r.Content == "" {
			errs = append(errs, apiError{Code: 9008, Message: "Content for TXT record is invalid."})
		} else if len(r.Content) > maxTXTLen {
			errs = append(errs, apiError{Code: 9100, Message: fmt.Sprintf("Content for TXT record is too long (max %d characters).", maxTXTLen)})
		}
	default:
		if r.Content == "" {
			errs = append(errs, apiError{Code: 9009, Message: "Content is required."})
		}
	}
	if r.TTL != 1 && (r.TTL < 60 || r.TTL > 86400) {
		errs = append(errs, apiError{Code: 9021, Message: "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic."})
	}
	if r.Proxied && !proxiable(r.Type) {
		errs = append(errs, apiError{Code: 9004, Message: "This record type cannot be proxied."})
	}
	if len(r.Comment) > maxCommentLen {
		errs = append(errs, apiError{Code: 9102, Message: fmt.Sprintf("DNS record comment is too long (max %d characters).", maxCommentLen)})
	}
	return errs
}

// hostnameRE accepts LDH labels, underscores (as in _dmarc) and a leading wildcard label.
var hostnameRE = regexp.MustCompile(`^(\*\.)?([a-z0-9_]([a-z0-9_\-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_\-]{0,61}[a-z0-9_])?$`)

// conflict reports the error the API answers when r cannot coexist with the zone's records.
func conflict(z *zone, r *Record) *apiError {
	for id, o := range z.records {
		if id == r.ID || o.Name != r.Name {
			continue
		}
		switch {
		case r.Type == "CNAME" && o.Type == "CNAME":
			if o.Content == r.Content {
				return &apiError{Code: 81058, Message: "An identical record already exists."}
			}
			return &apiError{Code: 81053, Message: "An A, AAAA, or CNAME record with that host already exists."}
		case r.Type == "CNAME" && (o.Type == "A" || o.Type == "AAAA"):
			return &apiError{Code: 81053, Message: "An A, AAAA, or CNAME record with that host already exists."}
		case o.Type == "CNAME" && (r.Type == "A" || r.Type == "AAAA"):
			return &apiError{Code: 81054, Message: "A CNAME record with that host already exists."}
		case o.Type == r.Type && o.Content == r.Content:
			if r.Type == "TXT" {
				return &apiError{Code: 81057, Message: "Record already exists."}
			}
			return &apiError{Code: 81058, Message: "An identical record already exists."}
		}
	}
	return nil
}

func proxiable(t string) bool { return t == "A" || t == "AAAA" || t == "CNAME" }

// normalizeName turns a name as sent ("www", "@", "www.example.com.") into the stored FQDN.
func normalizeName(name, zoneName string) string {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	switch {
	case n == "@" || n == zoneName:
		return zoneName
	case strings.HasSuffix(n, "."+zoneName):
		return n
	}
	return n + "." + zoneName
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
