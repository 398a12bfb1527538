package apiserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the API server.
type Config struct {
	// Store is where objects live. Required.
	Store store.Store
	// Tokens returns the API tokens in force (re-read by the caller when its file changes).
	// Every request but /healthz, /readyz and the Public handlers must carry one as
	// "Authorization: Bearer <token>" whose scope allows the route. Nil, with Token empty: no
	// authentication, every caller is admin (the agent allows that on a loopback-only API).
	Tokens func() *auth.Set
	// Token is a shorthand for one admin token named "admin" (tests).
	Token string
	// RequireTokens refuses every authenticated route while Tokens returns none, instead of
	// serving everyone as admin (an agent configured with tokens that are not loaded yet).
	RequireTokens bool
	// MaxBodyBytes limits request bodies. Default 2 MiB (a Secret may hold 1 MiB).
	MaxBodyBytes int64
	// Ready reports whether the agent can serve; /readyz answers 503 with its error. Default:
	// always ready.
	Ready func(ctx context.Context) error
	// Admit runs cross-object checks before a write (two Services claiming one route, ...).
	// Problems are refused with 422 like validation errors.
	Admit func(ctx context.Context, obj v1.Object) v1.ErrorList
	// Undo rolls a Service back to its previous spec (POST /apis/v1/services/{name}/undo), or
	// to revision toRevision of its history (?toRevision=N; 0: the previous one). Nil: 404.
	Undo func(ctx context.Context, name string, toRevision int64) (v1.Object, error)
	// Handlers are mounted as they are, e.g. "GET /api/providers/traefik". They are
	// authenticated like the rest of the API unless listed in Public.
	Handlers map[string]http.Handler
	// Public lists patterns of Handlers served without a token (they authenticate peers
	// themselves, or serve what anyone may see).
	Public []string
	// Scopes gives the least scope a pattern of Handlers needs. Default: admin, whatever the
	// method (a handler is sensitive until it says otherwise).
	Scopes map[string]auth.Scope
	// Gatherer serves /metrics. Default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the API's own metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// WatchTimeout closes watches after this long, so clients re-establish them. Default 30m.
	WatchTimeout time.Duration
}

// Server is the API server's http.Handler.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	log     *slog.Logger
	metrics *metrics
	public  map[string]bool
	static  *auth.Set // Config.Token as a set
	audit   *slog.Logger
}

// New returns the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("apiserver: a store is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 2 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.WatchTimeout <= 0 {
		cfg.WatchTimeout = 30 * time.Minute
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, metrics: newMetrics(cfg.Registerer), public: map[string]bool{}}
	if cfg.Token != "" {
		s.static = auth.NewSet([]auth.Token{{Name: "admin", Scope: auth.ScopeAdmin, Secret: cfg.Token}})
	}
	s.audit = cfg.Logger.With("audit", true)
	s.routes()
	return s, nil
}

type route struct {
	pattern string
	handler http.HandlerFunc
	// need is the least scope the route needs; "" is public.
	need auth.Scope
}

func (s *Server) routes() {
	for _, r := range []route{
		{"GET /healthz", s.healthz, ""},
		{"GET /readyz", s.readyz, ""},
		{"GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP, auth.ScopeRead},
		{"GET /apis/v1/{plural}", s.list, auth.ScopeRead},
		{"GET /apis/v1/{plural}/{name}", s.get, auth.ScopeRead},
		{"PUT /apis/v1/{plural}/{name}", s.put, auth.ScopeAdmin},
		{"DELETE /apis/v1/{plural}/{name}", s.delete, auth.ScopeAdmin},
		{"PUT /apis/v1/{plural}/{name}/status", s.putStatus, auth.ScopeAdmin},
		{"POST /apis/v1/services/{name}/undo", s.undo, auth.ScopeAdmin},
	} {
		s.mux.Handle(r.pattern, s.instrument(r.pattern, s.authenticate(r.pattern, r.need, r.handler)))
	}
	pub := map[string]bool{}
	for _, p := range s.cfg.Public {
		pub[p] = true
	}
	for pattern, h := range s.cfg.Handlers {
		need := auth.ScopeAdmin
		if sc, ok := s.cfg.Scopes[pattern]; ok {
			need = sc
		}
		if pub[pattern] {
			need = ""
		}
		s.mux.Handle(pattern, s.instrument(pattern, s.authenticate(pattern, need, h.ServeHTTP)))
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), "")
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\n")
}
