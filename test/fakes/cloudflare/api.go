// The HTTP side of the fake API: routes, the response envelope and error codes, authentication,
// injected failures and the dispatch to the handlers.

package cloudflare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

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
