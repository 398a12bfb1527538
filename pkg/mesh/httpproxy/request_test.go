// Table tests for the pure parts of building the upstream request and ordering upstreams:
// header handling, URL and body rewriting, the insertion sort and tie rotation.

package httpproxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestRemoveHopHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"none", http.Header{"Accept": {"*/*"}}, http.Header{"Accept": {"*/*"}}},
		{"standard hop headers", http.Header{"Connection": {"close"}, "Keep-Alive": {"1"}, "Te": {"trailers"},
			"Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"}, "Proxy-Authorization": {"x"}, "X-A": {"1"}},
			http.Header{"X-A": {"1"}}},
		{"named by Connection", http.Header{"Connection": {"X-Foo, x-bar", " "}, "X-Foo": {"1"}, "X-Bar": {"2"}, "X-Baz": {"3"}},
			http.Header{"X-Baz": {"3"}}},
	} {
		removeHopHeaders(tc.in)
		if !reflect.DeepEqual(tc.in, tc.want) {
			t.Errorf("%s: removeHopHeaders = %v, want %v", tc.name, tc.in, tc.want)
		}
	}
}

func TestHTTPHeaderHasToken(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{}, false},
		{http.Header{"Te": {"trailers"}}, true},
		{http.Header{"Te": {"gzip, Trailers"}}, true},
		{http.Header{"Te": {"gzip", " trailers "}}, true},
		{http.Header{"Te": {"trailersx"}}, false},
		{http.Header{"Accept": {"trailers"}}, false},
	} {
		if got := httpHeaderHasToken(tc.h, "Te", "trailers"); got != tc.want {
			t.Errorf("httpHeaderHasToken(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestCopyHeader(t *testing.T) {
	dst := http.Header{"A": {"1"}}
	copyHeader(dst, http.Header{"A": {"2"}, "B": {"3", "4"}})
	if want := (http.Header{"A": {"1", "2"}, "B": {"3", "4"}}); !reflect.DeepEqual(dst, want) {
		t.Errorf("copyHeader = %v, want %v", dst, want)
	}
}

func TestOutRequest(t *testing.T) {
	up := func(raw string, rewrite bool) *upstreamState {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return &upstreamState{Upstream: Upstream{URL: u, RewriteHost: rewrite}}
	}
	for _, tc := range []struct {
		name     string
		target   string
		up       *upstreamState
		header   http.Header
		wantURL  string
		wantHost string
		wantXFF  string
		wantTE   bool
	}{
		{"plain", "http://front.example/a?q=1", up("http://10.0.0.1:8080", false), nil,
			"http://10.0.0.1:8080/a?q=1", "front.example", "192.0.2.1", false},
		{"base path, rewritten host", "http://front.example/a", up("https://b.example/base/", true), nil,
			"https://b.example/base/a", "b.example", "192.0.2.1", false},
		{"prior X-Forwarded-For and TE", "http://front.example/", up("http://10.0.0.1", false),
			http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Te": {"trailers"}, "Connection": {"keep-alive"}},
			"http://10.0.0.1/", "front.example", "198.51.100.1, 192.0.2.1", true},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		r.RemoteAddr = "192.0.2.1:1234"
		for k, v := range tc.header {
			r.Header[k] = v
		}
		out := outRequest(context.Background(), r, tc.up, &reqBody{none: true}, "rid")
		if out.URL.String() != tc.wantURL || out.Host != tc.wantHost || out.RequestURI != "" {
			t.Errorf("%s: URL %s Host %s RequestURI %q; want %s %s", tc.name, out.URL, out.Host, out.RequestURI, tc.wantURL, tc.wantHost)
		}
		if got := out.Header.Get("X-Forwarded-For"); got != tc.wantXFF {
			t.Errorf("%s: X-Forwarded-For %q, want %q", tc.name, got, tc.wantXFF)
		}
		if got := out.Header.Get("Te") == "trailers"; got != tc.wantTE {
			t.Errorf("%s: Te trailers %v, want %v", tc.name, got, tc.wantTE)
		}
		if out.Header.Get(HeaderRequestID) != "rid" || out.Header.Get("Connection") != "" {
			t.Errorf("%s: headers %v", tc.name, out.Header)
		}
		if ua, ok := out.Header["User-Agent"]; !ok || ua[0] != "" {
			t.Errorf("%s: User-Agent %q, want set and empty", tc.name, ua)
		}
		if r.URL.Host != "front.example" {
			t.Errorf("%s: the client's request was changed: %s", tc.name, r.URL)
		}
	}
}

func TestReadBodyAndOutRequestBody(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       string
		unknownLen bool
		max        int64
		none       bool
		replayable bool
	}{
		{"empty", "", false, 8, true, true},
		{"small", "hello", false, 8, false, true},
		{"over max", "hello world", false, 8, false, false},
		{"unknown length, small", "hello", true, 8, false, true},
		{"unknown length, over max", "hello world", true, 8, false, false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://x/", strings.NewReader(tc.body))
		if tc.unknownLen {
			r.ContentLength = -1
		}
		b, err := readBody(r, tc.max)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if b.none != tc.none || b.replayable() != tc.replayable {
			t.Errorf("%s: none %v replayable %v; want %v %v", tc.name, b.none, b.replayable(), tc.none, tc.replayable)
		}
		u, _ := url.Parse("http://up")
		out := outRequest(context.Background(), r, &upstreamState{Upstream: Upstream{URL: u}}, b, "id")
		if tc.none {
			// An empty body the client sent stays an empty body (NoBody), never a nil one.
			if out.Body != http.NoBody || out.ContentLength != 0 || out.GetBody != nil {
				t.Errorf("%s: body %v length %d", tc.name, out.Body, out.ContentLength)
			}
			continue
		}
		if (out.GetBody != nil) != tc.replayable {
			t.Errorf("%s: GetBody set %v, want %v", tc.name, out.GetBody != nil, tc.replayable)
		}
		if b.touched.Load() {
			t.Errorf("%s: touched before reading", tc.name)
		}
		got, _ := io.ReadAll(out.Body)
		if string(got) != tc.body {
			t.Errorf("%s: upstream body %q, want %q", tc.name, got, tc.body)
		}
		if b.touched.Load() == tc.replayable {
			t.Errorf("%s: touched %v after reading, want %v", tc.name, b.touched.Load(), !tc.replayable)
		}
	}
}

func TestInsertionSortAndRotateTies(t *testing.T) {
	prio := []int{2, 1, 2, 1, 3}
	less := func(a, b int) bool { return prio[a] < prio[b] }
	eq := func(a, b int) bool { return prio[a] == prio[b] }
	for _, tc := range []struct {
		rr   uint64
		want []int
	}{
		{0, []int{1, 3, 0, 2, 4}}, // stable: equal priorities keep their order
		{1, []int{3, 1, 2, 0, 4}},
		{2, []int{1, 3, 0, 2, 4}},
	} {
		idx := []int{0, 1, 2, 3, 4}
		insertionSort(idx, less)
		rotateTies(idx, tc.rr, eq)
		if !reflect.DeepEqual(idx, tc.want) {
			t.Errorf("rr %d: %v, want %v", tc.rr, idx, tc.want)
		}
	}
	three := []int{0, 1, 2}
	rotateTies(three, 4, func(a, b int) bool { return true })
	if want := []int{1, 2, 0}; !reflect.DeepEqual(three, want) {
		t.Errorf("one run of three rotated by 4: %v, want %v", three, want)
	}
}
