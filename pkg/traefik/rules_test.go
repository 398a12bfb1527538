// Table tests for the rule builders and string-set helpers in rules.go, and the If-None-Match
// check the provider answers 304 with.

package traefik

import (
	"reflect"
	"testing"
)

func TestHTTPRuleAndSNIRule(t *testing.T) {
	for _, tc := range []struct {
		host, prefix string
		want         string
		wantErr      bool
	}{
		{"A.Example.com.", "", "Host(`a.example.com`)", false},
		{"a.example.com", "/api", "Host(`a.example.com`) && PathPrefix(`/api`)", false},
		{"*.Example.com", "", "HostRegexp(`^[^.]+\\.example\\.com$`)", false},
		{"a.example.com", "api", "", true},           // not starting with /
		{"a.example.com", "/a b", "", true},          // a space
		{"a.example.com", "/a`b", "", true},          // a backquote would end the rule
		{"a..example.com", "", "", true},             // empty label
		{"-a.example.com", "", "", true},             // leading hyphen
		{"a.example.com`) || Host(`x", "", "", true}, // injection
	} {
		got, err := httpRule(tc.host, tc.prefix)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("httpRule(%q, %q) = %q, %v; want %q, error %v", tc.host, tc.prefix, got, err, tc.want, tc.wantErr)
		}
	}
	for _, tc := range []struct {
		sni, want string
		wantErr   bool
	}{
		{"*", "HostSNI(`*`)", false},
		{"db.example.com", "HostSNI(`db.example.com`)", false},
		{"*.example.com", "HostSNIRegexp(`^[^.]+\\.example\\.com$`)", false},
		{"db example", "", true},
	} {
		got, err := sniRule(tc.sni)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("sniRule(%q) = %q, %v; want %q, error %v", tc.sni, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestValidEntryPoint(t *testing.T) {
	for _, tc := range []struct {
		ep   string
		want bool
	}{
		{"web", true}, {"websecure", true}, {"tcp_5432", true}, {"a-b", true},
		{"", false}, {"-web", false}, {"_web", false}, {"web.secure", false}, {"web secure", false},
		{"a23456789012345678901234567890123456789012345678901234567890123", true},
		{"a234567890123456789012345678901234567890123456789012345678901234", false},
	} {
		if got := validEntryPoint(tc.ep); got != tc.want {
			t.Errorf("validEntryPoint(%q) = %v, want %v", tc.ep, got, tc.want)
		}
	}
}

func TestCompactAndSortedCopy(t *testing.T) {
	for _, tc := range []struct {
		in, compact, sorted []string
	}{
		{nil, nil, nil},
		{[]string{}, []string{}, nil},
		{[]string{"a"}, []string{"a"}, []string{"a"}},
		{[]string{"a", "a", "b", "b", "b", "c"}, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{[]string{"b", "a", "b"}, []string{"b", "a", "b"}, []string{"a", "b"}},
	} {
		in := append([]string(nil), tc.in...)
		if got := sortedCopy(in); !reflect.DeepEqual(got, tc.sorted) {
			t.Errorf("sortedCopy(%q) = %q, want %q", tc.in, got, tc.sorted)
		}
		if !reflect.DeepEqual(in, append([]string(nil), tc.in...)) {
			t.Errorf("sortedCopy changed its input: %q", in)
		}
		if got := compact(append([]string(nil), tc.in...)); len(got) != len(tc.compact) || (len(got) > 0 && !reflect.DeepEqual(got, tc.compact)) {
			t.Errorf("compact(%q) = %q, want %q", tc.in, got, tc.compact)
		}
	}
}

func TestETagMatch(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{`"abc"`, true},
		{`W/"abc"`, true},
		{"*", true},
		{`"x", "abc"`, true},
		{`"x","y"`, false},
		{`abc`, false},
	} {
		if got := etagMatch(tc.header, etag); got != tc.want {
			t.Errorf("etagMatch(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
