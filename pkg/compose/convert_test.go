package compose

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// TestSecretKeys: a credential two services share under one name is one key of PROJECT-env; a
// different value under the same name gets SERVICE.VAR; values are never rendered.
func TestSecretKeys(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	yaml := "services:\n" +
		"  a: {image: x, environment: {DB_PASSWORD: same-one, API_TOKEN: tok-a}}\n" +
		"  b: {image: x, environment: {DB_PASSWORD: same-one, API_TOKEN: tok-b}}\n"
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Convert(context.Background(), []string{f}, Options{ProjectName: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Secrets {
		got = append(got, s.Secret+"/"+s.Key)
	}
	want := []string{"proj-env/API_TOKEN", "proj-env/DB_PASSWORD", "proj-env/b.API_TOKEN"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("secret keys %v, want %v", got, want)
	}
	src, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"same-one", "tok-a", "tok-b"} {
		if strings.Contains(string(src), v) {
			t.Errorf("rendered spec holds the secret value %q", v)
		}
	}
}

// TestSelfAliasRefused: an alias inside the node its anchor names is refused before compose-go
// sees it (it would recurse until the stack runs out); sibling aliases and merge keys still load.
func TestSelfAliasRefused(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(bad, []byte("services: &a\n  web: {image: x, labels: *a}\n"), 0o644)
	os.WriteFile(good, []byte("x-d: &d {image: x}\nservices:\n  web: {<<: *d}\n  api: {<<: *d}\n"), 0o644)
	if _, err := Convert(context.Background(), []string{bad}, Options{ProjectName: "p"}); err == nil || !strings.Contains(err.Error(), "alias *a") {
		t.Fatalf("self alias: err %v", err)
	}
	r, err := Convert(context.Background(), []string{good}, Options{ProjectName: "p"})
	if err != nil || len(r.Objects) != 2 {
		t.Fatalf("merge keys: %v, %d objects", err, len(r.Objects))
	}
}
