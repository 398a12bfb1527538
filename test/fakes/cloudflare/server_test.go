package cloudflare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cf "github.com/cloudflare/cloudflare-go"

	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

const token = "test-token-0123456789"

func start(t *testing.T) (*fake.Server, *cf.API, string) {
	t.Helper()
	s := fake.New(fake.WithToken(token))
	zid := s.AddZone("example.com")
	url, stop := s.Start()
	t.Cleanup(stop)
	api, err := cf.NewWithAPIToken(token, cf.BaseURL(url), cf.UsingRetryPolicy(0, 0, 0), cf.UsingRateLimit(1000))
	if err != nil {
		t.Fatal(err)
	}
	return s, api, zid
}

func codes(err error) []int {
	var re *cf.RequestError
	if errors.As(err, &re) {
		return re.ErrorCodes()
	}
	var nf *cf.NotFoundError
	if errors.As(err, &nf) {
		return nf.ErrorCodes()
	}
	var ae *cf.AuthenticationError
	if errors.As(err, &ae) {
		return ae.ErrorCodes()
	}
	return nil
}

func hasCode(err error, c int) bool {
	for _, x := range codes(err) {
		if x == c {
			return true
		}
	}
	return false
}

func TestZoneLookupAndAuth(t *testing.T) {
	s, api, zid := start(t)
	ctx := context.Background()
	zs, err := api.ListZonesContext(ctx, cf.WithZoneFilters("example.com", "", ""))
	if err != nil || len(zs.Result) != 1 || zs.Result[0].ID != zid {
		t.Fatalf("zone lookup: %v %+v", err, zs.Result)
	}
	zs, err = api.ListZonesContext(ctx, cf.WithZoneFilters("nope.com", "", ""))
	if err != nil || len(zs.Result) != 0 {
		t.Fatalf("missing zone: %v %+v", err, zs.Result)
	}

	url := strings.TrimSuffix(api.BaseURL, "/")
	bad, _ := cf.NewWithAPIToken("wrong-token", cf.BaseURL(url), cf.UsingRetryPolicy(0, 0, 0))
	_, _, err = bad.ListDNSRecords(ctx, cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{})
	if !hasCode(err, 9109) {
		t.Fatalf("unknown token: want 9109, got %v", err)
	}
	s.AddToken("scoped-token", "other.com")
	scoped, _ := cf.NewWithAPIToken("scoped-token", cf.BaseURL(url), cf.UsingRetryPolicy(0, 0, 0))
	_, _, err = scoped.ListDNSRecords(ctx, cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{})
	if !hasCode(err, 10000) {
		t.Fatalf("token without the zone: want 10000, got %v", err)
	}
	_, _, err = api.ListDNSRecords(ctx, cf.ZoneIdentifier("not-an-id"), cf.ListDNSRecordsParams{})
	if !hasCode(err, 7003) {
		t.Fatalf("malformed zone id: want 7003, got %v", err)
	}
	_, _, err = api.ListDNSRecords(ctx, cf.ZoneIdentifier(strings.Repeat("a", 32)), cf.ListDNSRecordsParams{})
	if !hasCode(err, 1003) {
		t.Fatalf("unknown zone id: want 1003, got %v", err)
	}

	// Raw requests: missing and malformed Authorization headers.
	for _, tc := range []struct {
		hdr  string
		code int
	}{{"", 9106}, {"Basic abc", 6003}} {
		req := httptest.NewRequest(http.MethodGet, "/client/v4/zones", nil)
		if tc.hdr != "" {
			req.Header.Set("Authorization", tc.hdr)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		var env struct {
			Success bool `json:"success"`
			Errors  []struct {
				Code int `json:"code"`
			} `json:"errors"`
			Result any `json:"result"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Success || len(env.Errors) != 1 || env.Errors[0].Code != tc.code || w.Code != 400 {
			t.Fatalf("auth %q: %d %s", tc.hdr, w.Code, w.Body)
		}
	}
}

func TestRecordsCRUDFiltersAndPagination(t *testing.T) {
	s, api, zid := start(t)
	ctx := context.Background()
	rc := cf.ZoneIdentifier(zid)
	for i := 0; i < 12; i++ {
		_, err := api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "A", Name: "web", Content: fmt.Sprintf("10.0.0.%d", i), TTL: 60, Comment: "mine"})
		if err != nil {
			t.Fatal(err)
		}
	}
	txt, err := api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "TXT", Name: "web.example.com", Content: "hello"})
	if err != nil || txt.Name != "web.example.com" || txt.TTL != 1 {
		t.Fatalf("txt: %v %+v", err, txt)
	}

	// Auto-pagination in the client walks every page.
	all, info, err := api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{ResultInfo: cf.ResultInfo{}})
	if err != nil || len(all) != 13 || info.Total != 13 {
		t.Fatalf("list all: %v %d %+v", err, len(all), info)
	}
	page, info, err := api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{ResultInfo: cf.ResultInfo{Page: 3, PerPage: 5}})
	if err != nil || len(page) != 3 || info.TotalPages != 3 || info.Count != 3 || info.Total != 13 {
		t.Fatalf("page 3: %v %d %+v", err, len(page), info)
	}
	s.ResetCalls()
	_, _, err = api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{ResultInfo: cf.ResultInfo{PerPage: 1}})
	if !hasCode(err, 1004) {
		t.Fatalf("per_page 1: want 1004, got %v", err)
	}
	got, _, _ := api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{Type: "TXT"})
	if len(got) != 1 {
		t.Fatalf("type filter: %d", len(got))
	}
	got, _, _ = api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{Content: "10.0.0.7"})
	if len(got) != 1 || got[0].Content != "10.0.0.7" {
		t.Fatalf("content filter: %+v", got)
	}
	got, _, _ = api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{Comment: "mine", Type: "TXT"})
	if len(got) != 0 {
		t.Fatalf("comment+type (all): %+v", got)
	}
	got, _, _ = api.ListDNSRecords(ctx, rc, cf.ListDNSRecordsParams{Comment: "mine", Type: "TXT", Match: "any"})
	if len(got) != 13 {
		t.Fatalf("comment|type (any): %d", len(got))
	}
	if n := s.CallCount(http.MethodGet, fake.PatternRecords); n != 5 {
		t.Fatalf("counted %d list calls, want 5", n)
	}

	// Identical record, CNAME exclusivity, validation.
	_, err = api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "A", Name: "web", Content: "10.0.0.1"})
	if !hasCode(err, 81058) {
		t.Fatalf("identical: %v", err)
	}
	_, err = api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "CNAME", Name: "web", Content: "x.example.net"})
	if !hasCode(err, 81053) {
		t.Fatalf("cname over A: %v", err)
	}
	if _, err = api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "CNAME", Name: "alias", Content: "X.example.net."}); err != nil {
		t.Fatal(err)
	}
	_, err = api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "A", Name: "alias", Content: "10.1.1.1"})
	if !hasCode(err, 81054) {
		t.Fatalf("A over cname: %v", err)
	}
	for _, p := range []cf.CreateDNSRecordParams{
		{Type: "A", Name: "v", Content: "::1"},
		{Type: "AAAA", Name: "v", Content: "10.0.0.1"},
		{Type: "CNAME", Name: "v", Content: "not a host"},
		{Type: "A", Name: "v", Content: "10.0.0.1", TTL: 5},
		{Type: "TXT", Name: "v", Content: "x", Proxied: cf.BoolPtr(true)},
		{Type: "TXT", Name: "v", Content: "x", Comment: strings.Repeat("c", 101)},
	} {
		if _, err := api.CreateDNSRecord(ctx, rc, p); err == nil || len(codes(err)) == 0 {
			t.Errorf("%+v: want a validation error, got %v", p, err)
		}
	}

	// PATCH keeps what is not sent; PUT replaces.
	rec := all[0]
	upd, err := api.UpdateDNSRecord(ctx, rc, cf.UpdateDNSRecordParams{ID: rec.ID, Content: "10.9.9.9"})
	if err != nil || upd.Content != "10.9.9.9" || upd.Comment != "mine" || upd.TTL != 60 {
		t.Fatalf("patch: %v %+v", err, upd)
	}
	body, _ := json.Marshal(map[string]any{"type": "A", "name": "web", "content": "10.8.8.8"})
	req, _ := http.NewRequest(http.MethodPut, api.BaseURL+"/zones/"+zid+"/dns_records/"+rec.ID, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	put, err := api.GetDNSRecord(ctx, rc, rec.ID)
	if err != nil || put.Content != "10.8.8.8" || put.Comment != "" || put.TTL != 1 {
		t.Fatalf("put: %v %+v", err, put)
	}
	if err := api.DeleteDNSRecord(ctx, rc, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := api.DeleteDNSRecord(ctx, rc, rec.ID); !hasCode(err, 81044) {
		t.Fatalf("delete twice: %v", err)
	}
	prox, err := api.CreateDNSRecord(ctx, rc, cf.CreateDNSRecordParams{Type: "A", Name: "p", Content: "10.0.0.1", TTL: 300, Proxied: cf.BoolPtr(true)})
	if err != nil || prox.TTL != 1 || !prox.Proxiable {
		t.Fatalf("proxied ttl: %v %+v", err, prox)
	}
}

func TestFailureSwitches(t *testing.T) {
	s, api, zid := start(t)
	ctx := context.Background()
	s.FailNext(2, http.StatusTooManyRequests, 1500*time.Millisecond)
	req, _ := http.NewRequest(http.MethodGet, api.BaseURL+"/zones/"+zid+"/dns_records", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("429: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, _, err = api.ListDNSRecords(ctx, cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{})
	if err == nil {
		t.Fatal("second request should be rate limited")
	}
	if _, _, err = api.ListDNSRecords(ctx, cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{}); err != nil {
		t.Fatalf("third request: %v", err)
	}
	s.FailNext(-1, http.StatusInternalServerError, 0)
	if _, _, err = api.ListDNSRecords(ctx, cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{}); err == nil {
		t.Fatal("500 expected")
	}
	s.ClearFailures()
	if _, _, err = api.ListDNSRecords(ctx, cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{}); err != nil {
		t.Fatal(err)
	}
	counts := s.CallCounts()
	if counts["GET "+fake.PatternRecords] != 5 {
		t.Fatalf("counts: %v", counts)
	}
}

// FuzzRecordWrite feeds arbitrary bodies to create and update: the fake must answer an envelope,
// never panic, and never store a record the API would refuse.
func FuzzRecordWrite(f *testing.F) {
	f.Add([]byte(`{"type":"A","name":"a","content":"10.0.0.1","ttl":60}`))
	f.Add([]byte(`{"type":"CNAME","name":"@","content":"x.example.net","proxied":true}`))
	f.Add([]byte(`{"type":"TXT","name":"_x","content":"v=spf1","comment":"c"}`))
	f.Add([]byte(`{"type":1}`))
	s := fake.New(fake.WithToken(token))
	zid := s.AddZone("example.com")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, method := range []string{http.MethodPost} {
			req := httptest.NewRequest(method, "/client/v4/zones/"+zid+"/dns_records", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			var env struct {
				Success *bool `json:"success"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Success == nil {
				t.Fatalf("not an envelope: %s", w.Body)
			}
			if *env.Success != (w.Code == 200) {
				t.Fatalf("success %v with status %d", *env.Success, w.Code)
			}
		}
		for _, r := range s.Records("example.com") {
			if r.TTL != 1 && (r.TTL < 60 || r.TTL > 86400) {
				t.Fatalf("stored an invalid ttl: %+v", r)
			}
			if r.Proxied && r.Type != "A" && r.Type != "AAAA" && r.Type != "CNAME" {
				t.Fatalf("stored a proxied %s", r.Type)
			}
		}
	})
}

func TestAdminEndpoints(t *testing.T) {
	s, api, zid := start(t)
	base := strings.TrimSuffix(api.BaseURL, "/client/v4")
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if st, _ := do(http.MethodPut, "/_fake/records?zone=example.com", `{"type":"A","name":"op","content":"10.0.0.1","comment":"by hand"}`); st != 200 {
		t.Fatal(st)
	}
	if _, err := api.CreateDNSRecord(context.Background(), cf.ZoneIdentifier(zid), cf.CreateDNSRecordParams{Type: "A", Name: "x", Content: "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	st, body := do(http.MethodGet, "/_fake/records?zone=example.com", "")
	if st != 200 || !strings.Contains(body, `"op.example.com"`) || !strings.Contains(body, `"x.example.com"`) {
		t.Fatalf("records: %d %s", st, body)
	}
	var rep fake.CallsReport
	_, body = do(http.MethodGet, "/_fake/calls", "")
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Total != 1 || rep.Writes != 1 || rep.ByKey["POST "+fake.PatternRecords] != 1 {
		t.Fatalf("calls: %v %+v", err, rep)
	}
	if st, _ := do(http.MethodPost, "/_fake/fail?n=1&status=429&retryAfter=2s", ""); st != 200 {
		t.Fatal(st)
	}
	if _, _, err := api.ListDNSRecords(context.Background(), cf.ZoneIdentifier(zid), cf.ListDNSRecordsParams{}); err == nil {
		t.Fatal("want a 429")
	}
	if st, _ := do(http.MethodPost, "/_fake/fail?n=1&status=404", ""); st != 400 {
		t.Fatalf("fail with 404 accepted: %d", st)
	}
	do(http.MethodDelete, "/_fake/calls", "")
	if n := len(s.Calls()); n != 0 {
		t.Fatalf("%d calls after reset", n)
	}
}
