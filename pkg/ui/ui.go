package ui

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/auth"
	"k8s.io/utils/clock"
)

// Paths the handler serves.
const (
	// Path is the page.
	Path = "/ui/"
	// LoginPath takes a token (POST, form field "token") and sets the session cookie.
	LoginPath = "/ui/login"
	// LogoutPath ends the session.
	LogoutPath = "/ui/logout"
	// APIPath prefixes the read-only object paths the page uses: APIPath + "{plural}[/{name}]".
	APIPath = "/ui/api/v1/"
	// CookieName is the session cookie.
	CookieName = "constellation_ui"
)

// EventKind is the kind name of recorded events. The events panel shows them when the API
// knows the kind and says so when it does not.
const EventKind = "Event"

//go:embed assets
var assets embed.FS

// Config configures the status page.
type Config struct {
	// Tokens returns the API tokens in force (the API server's own). Nil, or a nil set while
	// RequireTokens is false: the API has no tokens (loopback only) and the page needs no login.
	Tokens func() *auth.Set
	// RequireTokens refuses every session while Tokens returns none (as the API server does).
	RequireTokens bool
	// API returns the API server's handler, which the object paths are forwarded to. It is
	// called per request, so it may be set after the handler is built. Required.
	API func() http.Handler
	// Node and Version name this agent in the page's header.
	Node, Version string
	// SessionTTL is how long a session lasts after login. Default 12h.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions kept; the one closest to expiry makes room. Default 256.
	MaxSessions int
	// Clock times sessions. Default clock.RealClock{}.
	Clock clock.PassiveClock
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Handler serves the status page.
type Handler struct {
	cfg    Config
	static http.Handler
	log    *slog.Logger

	mu sync.Mutex
	// guarded by mu:
	sessions map[string]session
}

// session is one browser's login: the token it was opened with, checked again on every request.
type session struct {
	secret  string
	name    string
	expires time.Time
}

// New returns the status page's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.API == nil {
		return nil, errors.New("ui: Config.API is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 256
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	return &Handler{
		cfg:      cfg,
		static:   http.StripPrefix(Path+"static/", http.FileServer(http.FS(sub))),
		log:      cfg.Logger,
		sessions: map[string]session{},
	}, nil
}

// Routes returns the handler's routes for the API server's mux. Every one of them is public as
// far as the API server is concerned: the page authenticates its sessions itself (assets and
// the login page hold no cluster data and are served to anyone).
func (h *Handler) Routes() map[string]http.Handler {
	wrap := func(f http.HandlerFunc) http.Handler { return securityHeaders(f) }
	return map[string]http.Handler{
		"GET /ui":                            wrap(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Path, http.StatusMovedPermanently) }),
		"GET /ui/{$}":                        wrap(h.serveIndex),
		"GET " + LoginPath:                   wrap(h.serveLoginPage),
		"POST " + LoginPath:                  wrap(h.serveLogin),
		"POST " + LogoutPath:                 wrap(h.serveLogout),
		"GET /ui/static/":                    wrap(h.serveStatic),
		"GET /ui/config.json":                wrap(h.serveConfig),
		"GET " + APIPath + "{plural}":        wrap(h.serveAPI),
		"GET " + APIPath + "{plural}/{name}": wrap(h.serveAPI),
	}
}

// securityHeaders: the page runs only its own scripts and styles, talks only to its origin,
// and cannot be framed.
func securityHeaders(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		next(w, r)
	}
}

// noAuth reports whether the API has no tokens at all (a loopback-only API where every caller is
// admin): the page then needs no login either.
func (h *Handler) noAuth() bool {
	return h.tokenSet() == nil && !h.cfg.RequireTokens
}

func (h *Handler) tokenSet() *auth.Set {
	if h.cfg.Tokens == nil {
		return nil
	}
	if set := h.cfg.Tokens(); set.Len() > 0 {
		return set
	}
	return nil
}

// principal returns the request's session, checked against the tokens in force. ok is false
// when the request has no valid session; with no tokens configured every request passes with
// an empty secret.
func (h *Handler) principal(r *http.Request) (session, bool) {
	if h.noAuth() {
		return session{name: auth.Anonymous.Name}, true
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	s, ok := h.sessions[c.Value]
	if ok && !now.Before(s.expires) {
		delete(h.sessions, c.Value)
		ok = false
	}
	h.mu.Unlock()
	if !ok {
		return session{}, false
	}
	tok, found := h.tokenSet().Lookup(s.secret)
	if !found || !readable(tok.Scope) {
		h.mu.Lock()
		delete(h.sessions, c.Value)
		h.mu.Unlock()
		return session{}, false
	}
	return s, true
}

// readable: the page needs the read scope (admin includes it).
func readable(sc auth.Scope) bool {
	return auth.Principal{Scope: sc}.Allows(auth.ScopeRead)
}

func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.principal(r); !ok {
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
		return
	}
	h.serveAsset(w, r, "index.html")
}

func (h *Handler) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	h.serveAsset(w, r, "login.html")
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.Error(w, "ui: "+name+" missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/") || strings.HasSuffix(r.URL.Path, ".html") {
		http.NotFound(w, r) // no directory listings; pages go through their own routes
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	h.static.ServeHTTP(w, r)
}

// sameOrigin refuses a login posted from another site (login CSRF: logging a victim's browser
// into the attacker's token). Browsers send Sec-Fetch-Site or Origin with every POST.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "login refused: the request comes from another site")
		return
	}
	if h.noAuth() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "login: read form: "+err.Error())
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	if secret == "" {
		writeError(w, http.StatusBadRequest, "login: the token field is empty")
		return
	}
	set := h.tokenSet()
	if set == nil {
		writeError(w, http.StatusUnauthorized, "no API token is loaded yet on this agent")
		return
	}
	tok, ok := set.Lookup(secret)
	if !ok {
		h.log.Info("ui login refused", "why", "invalid token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "invalid token")
		return
	}
	if !readable(tok.Scope) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("token %q has the %s scope; the status page needs read", tok.Name, tok.Scope))
		return
	}
	id, err := newSessionID()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "login: "+err.Error())
		return
	}
	now := h.cfg.Clock.Now()
	h.addSession(id, session{secret: secret, name: tok.Name, expires: now.Add(h.cfg.SessionTTL)}, now)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: Path, MaxAge: int(h.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	h.log.Info("ui login", "who", tok.Name, "scope", string(tok.Scope), "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// addSession keeps s under id, dropping expired sessions and, when full, the one that expires
// first.
func (h *Handler) addSession(id string, s session, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, old := range h.sessions {
		if !now.Before(old.expires) {
			delete(h.sessions, k)
		}
	}
	for len(h.sessions) >= h.cfg.MaxSessions {
		var first string
		for k, old := range h.sessions {
			if first == "" || old.expires.Before(h.sessions[first].expires) {
				first = k
			}
		}
		delete(h.sessions, first)
	}
	h.sessions[id] = s
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "logout refused: the request comes from another site")
		return
	}
	if c, err := r.Cookie(CookieName); err == nil {
		h.mu.Lock()
		delete(h.sessions, c.Value)
		h.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Path, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// pageKinds are the kinds the page shows, by Kind. Event joins them when the API knows it.
var pageKinds = []string{v1.KindNode, v1.KindService, v1.KindDNSRecord, v1.KindLease}

// kinds maps each kind the page shows to its URL plural, looked up by kind name, so a kind
// the API does not know (Event before it exists) is simply absent.
func kinds() map[string]string {
	out := map[string]string{}
	for _, k := range append(append([]string(nil), pageKinds...), EventKind) {
		if info, ok := v1.LookupKind(k); ok && info.Kind == k && !info.Internal() {
			out[k] = info.Plural
		}
	}
	return out
}

type pageConfig struct {
	Node    string            `json:"node"`
	Version string            `json:"version"`
	User    string            `json:"user"`
	Auth    bool              `json:"auth"`
	Kinds   map[string]string `json:"kinds"`
}

func (h *Handler) serveConfig(w http.ResponseWriter, r *http.Request) {
	s, ok := h.principal(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not logged in: open "+LoginPath)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, pageConfig{Node: h.cfg.Node, Version: h.cfg.Version, User: s.name, Auth: !h.noAuth(), Kinds: kinds()})
}

// forwardedQuery are the query parameters the object paths pass on; anything else (reveal,
// dryRun) is dropped.
var forwardedQuery = []string{"watch", "resourceVersion", "labelSelector"}

// serveAPI forwards a GET of a kind the page shows to the API server, with the session's
// token: list, get and watch, nothing else.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	s, ok := h.principal(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not logged in: open "+LoginPath)
		return
	}
	plural := r.PathValue("plural")
	allowed := false
	for _, p := range kinds() {
		allowed = allowed || p == plural
	}
	if !allowed {
		names := make([]string, 0, 5)
		for _, p := range kinds() {
			names = append(names, p)
		}
		sort.Strings(names)
		writeError(w, http.StatusNotFound, fmt.Sprintf("the status page does not show %q (it shows %s)", plural, strings.Join(names, ", ")))
		return
	}
	api := h.cfg.API()
	if api == nil {
		writeError(w, http.StatusServiceUnavailable, "the API server is not ready")
		return
	}
	p := "/apis/v1/" + url.PathEscape(plural)
	if name := r.PathValue("name"); name != "" {
		p += "/" + url.PathEscape(name)
	}
	q := url.Values{}
	for _, k := range forwardedQuery {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	out, err := http.NewRequestWithContext(r.Context(), http.MethodGet, p, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out.URL.RawQuery = q.Encode()
	out.RemoteAddr, out.Host, out.TLS = r.RemoteAddr, r.Host, r.TLS
	out.Header.Set("Accept", "application/json")
	if s.secret != "" {
		out.Header.Set("Authorization", "Bearer "+s.secret)
	}
	w.Header().Set("Cache-Control", "no-store")
	api.ServeHTTP(w, out)
}

func newSessionID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
