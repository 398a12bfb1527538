package compose

import (
	"reflect"
	"testing"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want [][2]string
		ok   bool
	}{
		{"Host(`a.example.com`)", [][2]string{{"a.example.com", ""}}, true},
		{"Host(`a.example.com`) && PathPrefix(`/api`)", [][2]string{{"a.example.com", "/api"}}, true},
		{"Host(`a.com`, `b.com`)", [][2]string{{"a.com", ""}, {"b.com", ""}}, true},
		{"Host(`a.com`) || Host(`b.com`) && PathPrefix(`/x`)", [][2]string{{"a.com", ""}, {"b.com", "/x"}}, true},
		{"(Host(`a.com`))", [][2]string{{"a.com", ""}}, true},
		{"PathPrefix(`/x`)", nil, false},
		{"Host(`a.com`) && Headers(`X`, `y`)", nil, false},
		{"HostRegexp(`{sub:[a-z]+}.a.com`)", nil, false},
		{"", nil, false},
	} {
		got, ok := parseRule(tc.rule)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseRule(%q) = %v, %v; want %v, %v", tc.rule, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLooksSecret(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        bool
	}{
		{"MYSQL_PASSWORD", "x", true},
		{"AUTHENTIK_SECRET_KEY", "x", true},
		{"GITEA__database__PASSWD", "x", true},
		{"API_TOKEN", "x", true},
		{"MYSQL_PASSWORD", "", false},                 // nothing to hide
		{"MYSQL_PASSWORD_FILE", "/run/x", false},      // names a file
		{"KEYCLOAK_URL", "https://k", false},          // KEYCLOAK is not KEY
		{"DATABASE_URL", "postgres://u:p@h/db", true}, // a password in a URL
		{"DATABASE_URL", "postgres://h/db", false},
		{"LOG_LEVEL", "info", false},
	} {
		if got := looksSecret(tc.name, tc.value); got != tc.want {
			t.Errorf("looksSecret(%q, %q) = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}
