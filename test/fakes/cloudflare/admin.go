package cloudflare

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AdminPrefix is where the fake's control endpoints live, for tests that run it as a separate
// process (test/fakes/cloudflare/cmd/fake-cloudflare). They need no token and are not counted as
// calls. Real Cloudflare has nothing there.
//
//	GET    /_fake/records?zone=Z       the zone's records (JSON array)
//	PUT    /_fake/records?zone=Z       store a record as an operator would (body: a Record; no id creates)
//	DELETE /_fake/records?zone=Z&id=I  delete a record behind the API's back
//	GET    /_fake/calls                {"total", "writes", "byKey", "calls"}
//	DELETE /_fake/calls                forget the call log
//	POST   /_fake/fail?n=N&status=S&retryAfter=D   fail the next N requests (N<0: until cleared)
//	DELETE /_fake/fail                 stop failing
//	POST   /_fake/zones?name=Z         add a zone; answers {"id"}
const AdminPrefix = "/_fake/"

// CallsReport is what GET /_fake/calls answers.
type CallsReport struct {
	Total  int            `json:"total"`
	Writes int            `json:"writes"`
	ByKey  map[string]int `json:"byKey"`
	Calls  []Call         `json:"calls"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	bad := func(msg string) { reply(http.StatusBadRequest, map[string]string{"error": msg}) }
	switch strings.TrimPrefix(r.URL.Path, AdminPrefix) + " " + r.Method {
	case "records GET":
		reply(http.StatusOK, s.Records(q.Get("zone")))
	case "records PUT":
		var rec Record
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&rec); err != nil {
			bad("body: " + err.Error())
			return
		}
		got, err := s.PutRecord(q.Get("zone"), rec)
		if err != nil {
			bad(err.Error())
			return
		}
		reply(http.StatusOK, got)
	case "records DELETE":
		if !s.DeleteRecord(q.Get("zone"), q.Get("id")) {
			reply(http.StatusNotFound, map[string]string{"error": "no such record"})
			return
		}
		reply(http.StatusOK, map[string]string{"id": q.Get("id")})
	case "calls GET":
		calls := s.Calls()
		rep := CallsReport{Total: len(calls), ByKey: map[string]int{}, Calls: calls}
		for _, c := range calls {
			rep.ByKey[c.Key()]++
			if c.Method != http.MethodGet {
				rep.Writes++
			}
		}
		reply(http.StatusOK, rep)
	case "calls DELETE":
		s.ResetCalls()
		reply(http.StatusOK, map[string]string{})
	case "fail POST":
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil {
			bad("n must be an integer")
			return
		}
		status, err := strconv.Atoi(q.Get("status"))
		if err != nil || (status != http.StatusTooManyRequests && (status < 500 || status > 599)) {
			bad("status must be 429 or 5xx")
			return
		}
		var ra time.Duration
		if v := q.Get("retryAfter"); v != "" {
			if ra, err = time.ParseDuration(v); err != nil {
				bad("retryAfter must be a Go duration")
				return
			}
		}
		s.FailNext(n, status, ra)
		reply(http.StatusOK, map[string]string{})
	case "fail DELETE":
		s.ClearFailures()
		reply(http.StatusOK, map[string]string{})
	case "zones POST":
		name := q.Get("name")
		if name == "" {
			bad("name is required")
			return
		}
		reply(http.StatusOK, map[string]string{"id": s.AddZone(name)})
	default:
		reply(http.StatusNotFound, map[string]string{"error": "unknown fake endpoint"})
	}
}
