// Test-side controls of the fake: tokens, zones and records set behind the API's back, injected
// failures and latency, and the call log.

package cloudflare

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

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
