package auth

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Token
		err      string
	}{
		{name: "one bare token is admin", in: "s3cret\n", want: []Token{{"admin", ScopeAdmin, "s3cret"}}},
		{name: "bare token with comment", in: "# the admin token\ns3cret # here\n", want: []Token{{"admin", ScopeAdmin, "s3cret"}}},
		{name: "named tokens", in: "ops admin a1\n\ngrafana read r1\ntraefik provider p1\n",
			want: []Token{{"ops", ScopeAdmin, "a1"}, {"grafana", ScopeRead, "r1"}, {"traefik", ScopeProvider, "p1"}}},
		{name: "empty", in: "\n# nothing\n", err: "no token"},
		{name: "two fields", in: "ops admin\n", err: "line 1: want NAME SCOPE TOKEN"},
		{name: "two bare lines", in: "a\nb\n", err: "line 1: want NAME SCOPE TOKEN"},
		{name: "unknown scope", in: "ops root a1\n", err: `line 1 (ops): unknown scope "root"`},
		{name: "duplicate name", in: "ops admin a1\nops read r1\n", err: `line 2: name "ops" is used twice`},
		{name: "duplicate secret", in: "ops admin a1\ngrafana read a1\n", err: `line 2 (grafana): same secret as token "ops"`},
		{name: "bad name", in: "o/ps admin a1\n", err: `line 1: name "o/ps"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokens([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				for _, s := range []string{"a1", "r1", "s3cret"} {
					if strings.Contains(err.Error(), " "+s) {
						t.Fatalf("error %q shows a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("token %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestTokenStringHidesSecret(t *testing.T) {
	tok := Token{"ops", ScopeAdmin, "very-secret"}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %s", tok, tok), fmt.Sprint([]Token{tok})} {
		if strings.Contains(s, "very-secret") {
			t.Fatalf("%q shows the secret", s)
		}
	}
}

func TestSetLookup(t *testing.T) {
	s := NewSet([]Token{{"ops", ScopeAdmin, "a1"}, {"grafana", ScopeRead, "r1"}})
	if tok, ok := s.Lookup("r1"); !ok || tok.Name != "grafana" {
		t.Fatalf("Lookup(r1) = %v %v", tok, ok)
	}
	for _, bad := range []string{"", "r", "r1 ", "a1a1"} {
		if _, ok := s.Lookup(bad); ok {
			t.Fatalf("Lookup(%q) matched", bad)
		}
	}
	if tok, ok := s.First(ScopeAdmin); !ok || tok.Name != "ops" {
		t.Fatalf("First(admin) = %v", tok)
	}
	if _, ok := s.First(ScopeProvider); ok {
		t.Fatal("First(provider) found one")
	}
	var nilSet *Set
	if _, ok := nilSet.Lookup("a1"); ok || nilSet.Len() != 0 {
		t.Fatal("a nil set matched")
	}
}

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		scope, need Scope
		want        bool
	}{
		{ScopeAdmin, ScopeAdmin, true}, {ScopeAdmin, ScopeRead, true}, {ScopeAdmin, ScopeProvider, true},
		{ScopeRead, ScopeRead, true}, {ScopeRead, ScopeAdmin, false}, {ScopeRead, ScopeProvider, false},
		{ScopeProvider, ScopeProvider, true}, {ScopeProvider, ScopeRead, false}, {ScopeProvider, ScopeAdmin, false},
		{"", ScopeRead, false},
	} {
		if got := (Principal{Name: "x", Scope: tc.scope}).Allows(tc.need); got != tc.want {
			t.Errorf("%s allows %s = %v, want %v", tc.scope, tc.need, got, tc.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer abc ": "abc", "Basic abc": "", "": "", "Bearer": ""} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		if in != "" {
			r.Header.Set("Authorization", in)
		}
		if got := BearerToken(r); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFileModeAndReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens")
	if err := os.WriteFile(p, []byte("ops admin a1-0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(p, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable token file: err = %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Set().Lookup("a1-0123456789abcdef"); !ok {
		t.Fatal("token not loaded")
	}
	if f.changed() {
		t.Fatal("changed right after loading")
	}
	if err := os.WriteFile(p, []byte("ops admin a2-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !f.changed() {
		t.Fatal("a rewritten file is not seen as changed")
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Set().Lookup("a2-0123456789abcdef"); !ok {
		t.Fatal("new token not loaded")
	}
	// Loosened mode: refused, tokens kept.
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("a group-readable file was reloaded")
	}
	if _, ok := f.Set().Lookup("a2-0123456789abcdef"); !ok {
		t.Fatal("a failed reload dropped the tokens")
	}
}

func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{"s3cret\n", "ops admin a\ngrafana read b\n", "# c\n\n x y z # w\n", "a b\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := ParseTokens(b)
		if err != nil {
			return
		}
		if len(toks) == 0 {
			t.Fatal("no error and no token")
		}
		names := map[string]bool{}
		for _, tok := range toks {
			if tok.Secret == "" || names[tok.Name] {
				t.Fatalf("bad token %v", tok)
			}
			names[tok.Name] = true
			if _, err := ParseScope(string(tok.Scope)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestParseSecretTokensAndMerge(t *testing.T) {
	toks, err := ParseSecretTokens(map[string]string{"grafana": "read r1", "ci": "admin c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 || toks[0] != (Token{"ci", ScopeAdmin, "c1"}) || toks[1] != (Token{"grafana", ScopeRead, "r1"}) {
		t.Fatalf("got %v", toks)
	}
	for data, want := range map[string]string{"read": "want \"SCOPE TOKEN\"", "root x1": "unknown scope", "read a b": "got 3 fields"} {
		_, err := ParseSecretTokens(map[string]string{"k": data})
		if err == nil || !strings.Contains(err.Error(), "data.k: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", data, err, want)
		}
	}
	file := NewSet([]Token{{"ops", ScopeAdmin, "a1"}})
	sec := NewSet([]Token{{"ops", ScopeRead, "x"}, {"grafana", ScopeRead, "a1"}, {"ci", ScopeRead, "c1"}})
	m, dropped := Merge(file, sec)
	if m.Len() != 2 || fmt.Sprint(dropped) != "[ops grafana]" {
		t.Fatalf("merged %v, dropped %v", m.Tokens(), dropped)
	}
	if tok, _ := m.Lookup("a1"); tok.Name != "ops" {
		t.Fatalf("the file's token lost: %v", tok)
	}
}
