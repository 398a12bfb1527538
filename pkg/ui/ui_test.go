package ui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/ui"
)

// serve runs an API server over the in-memory store with the page mounted as the agent mounts it.
func serve(t *testing.T, tokens *auth.Set) *httptest.Server {
	t.Helper()
	return serveWith(t, store.NewMemory(), tokens)
}

func serveStore(t *testing.T, st store.Store) *httptest.Server { return serveWith(t, st, nil) }

func serveWith(t *testing.T, st store.Store, tokens *auth.Set) *httptest.Server {
	t.Helper()
	var api *apiserver.Server
	h, err := ui.New(ui.Config{Tokens: func() *auth.Set { return tokens }, RequireTokens: tokens != nil,
		API: func() http.Handler { return api }, Node: "n1", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	routes := h.Routes()
	var public []string
	for p := range routes {
		public = append(public, p)
	}
	api, err = apiserver.New(apiserver.Config{Store: st, Tokens: func() *auth.Set { return tokens },
		RequireTokens: tokens != nil, Handlers: routes, Public: public})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLoginSessionAndReadOnlyForwarding(t *testing.T) {
	tokens := auth.NewSet([]auth.Token{
		{Name: "ops", Scope: auth.ScopeAdmin, Secret: "admin-secret-0123456789"},
		{Name: "viewer", Scope: auth.ScopeRead, Secret: "read-secret-0123456789"},
		{Name: "traefik", Scope: auth.ScopeProvider, Secret: "prov-secret-0123456789"},
	})
	srv := serve(t, tokens)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Without a session: the page redirects to the login, data is refused, assets are served.
	resp, err := c.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != ui.LoginPath {
		t.Fatalf("GET /ui/ without a session: %d %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), ui.LoginPath)
	}
	if code, _ := get(t, c, srv.URL+"/ui/api/v1/services"); code != http.StatusUnauthorized {
		t.Fatalf("data without a session: %d, want 401", code)
	}
	if code, body := get(t, c, srv.URL+"/ui/static/app.js"); code != 200 || !strings.Contains(body, "watchKind") {
		t.Fatalf("app.js: %d", code)
	}

	login := func(tok string) *http.Response {
		resp, err := c.PostForm(srv.URL+ui.LoginPath, url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := login("wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", r.StatusCode)
	}
	if r := login("prov-secret-0123456789"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("provider token: %d, want 403", r.StatusCode)
	}
	r := login("admin-secret-0123456789")
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("admin login: %d", r.StatusCode)
	}
	var ck *http.Cookie
	for _, k := range r.Cookies() {
		if k.Name == ui.CookieName {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != ui.Path || strings.Contains(ck.Value, "admin-secret") {
		t.Fatalf("session cookie: %+v", ck)
	}
	if code, body := get(t, c, srv.URL+"/ui/"); code != 200 || !strings.Contains(body, `id="services"`) {
		t.Fatalf("page with a session: %d", code)
	}
	if code, body := get(t, c, srv.URL+"/ui/api/v1/services"); code != 200 || !strings.Contains(body, `"kind":"ServiceList"`) {
		t.Fatalf("list through the page: %d %s", code, body)
	}
	// Read-only whatever the token: secrets and other paths are not forwarded, writes have no route.
	if code, _ := get(t, c, srv.URL+"/ui/api/v1/secrets"); code != http.StatusNotFound {
		t.Fatalf("secrets through the page: %d, want 404", code)
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/ui/api/v1/services/web", strings.NewReader("{}"))
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT through the page: %v %v", err, resp.StatusCode)
	}
	// The cookie is not an API credential.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/apis/v1/services", nil)
	req.AddCookie(ck)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API with the cookie only: %v %v", err, resp.StatusCode)
	}
	// A login posted from another site is refused.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+ui.LoginPath, strings.NewReader("token=read-secret-0123456789"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: %v %v", err, resp.StatusCode)
	}
}
