// Table tests for the client's pure helpers: the default scheme of a bare host:port, kind
// paths, the rule a route shows, and decoding watch events.

package client

import (
	"errors"
	"net/http"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestDefaultScheme(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:7480", "http"},
		{"127.1.2.3:7480", "http"},
		{"[::1]:7480", "http"},
		{"localhost:7480", "http"},
		{"localhost", "http"},
		{"10.0.0.1:7480", "https"},
		{"api.example.com:443", "https"},
		{"api.example.com", "https"},
	} {
		if got := defaultScheme(tc.in); got != tc.want {
			t.Errorf("defaultScheme(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestObjectPath(t *testing.T) {
	for _, tc := range []struct {
		kind, name, want string
		wantErr          bool
	}{
		{v1.KindService, "web", "/apis/v1/services/web", false},
		{"svc", "web", "/apis/v1/services/web", false},
		{v1.KindService, "a/b", "/apis/v1/services/a%2Fb", false},
		{v1.KindService, "", "", true},
		{"Nope", "x", "", true},
		{v1.KindKeyring, "x", "", true}, // internal: never served
	} {
		got, err := objectPath(tc.kind, tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("objectPath(%q, %q) = %q, %v; want %q, error %v", tc.kind, tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRuleOf(t *testing.T) {
	for _, tc := range []struct {
		r    Route
		want string
	}{
		{Route{Host: "a.example.com"}, "Host(`a.example.com`)"},
		{Route{Host: "a.example.com", Path: "/api"}, "Host(`a.example.com`) && PathPrefix(`/api`)"},
		{Route{Protocol: "tcp", Host: "db.example.com"}, "HostSNI(`db.example.com`)"},
		{Route{Protocol: "tcp"}, ""},
		{Route{Path: "/x"}, "PathPrefix(`/x`)"},
	} {
		if got := ruleOf(tc.r); got != tc.want {
			t.Errorf("ruleOf(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	svc := `{"apiVersion":"` + v1.APIVersion + `","kind":"Service","metadata":{"name":"web"}}`
	for _, tc := range []struct {
		name     string
		line     string
		typ      EventType
		object   string // the decoded object's name
		status   int    // of Err, for ERROR events
		wantErr  bool
		errMatch string
	}{
		{"added", `{"type":"ADDED","object":` + svc + `}`, Added, "web", 0, false, ""},
		{"deleted", `{"type":"DELETED","object":` + svc + `}`, Deleted, "web", 0, false, ""},
		{"error with code", `{"type":"ERROR","object":{"code":410,"error":"too old"}}`, ErrorEvent, "", 410, false, "too old"},
		{"compacted", `{"type":"ERROR","object":{"error":"revision compacted"}}`, ErrorEvent, "", http.StatusGone, false, "revision compacted"},
		{"bare error", `{"type":"ERROR","object":"x"}`, ErrorEvent, "", 0, false, `watch failed: "x"`},
		{"unknown type", `{"type":"BOOKMARK","object":{}}`, "", "", 0, true, ""},
		{"unknown kind", `{"type":"ADDED","object":{"kind":"Nope"}}`, "", "", 0, true, ""},
		{"not json", `nope`, "", "", 0, true, ""},
	} {
		ev, err := decodeEvent([]byte(tc.line))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if ev.Type != tc.typ {
			t.Errorf("%s: type %q, want %q", tc.name, ev.Type, tc.typ)
		}
		if tc.object != "" && (ev.Object == nil || ev.Object.GetMetadata().Name != tc.object) {
			t.Errorf("%s: object %+v, want %q", tc.name, ev.Object, tc.object)
		}
		if tc.typ == ErrorEvent {
			var e *Error
			if !errors.As(ev.Err, &e) || e.StatusCode != tc.status || e.Message != tc.errMatch {
				t.Errorf("%s: Err %#v, want status %d message %q", tc.name, ev.Err, tc.status, tc.errMatch)
			}
		}
	}
}
