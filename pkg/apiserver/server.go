package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
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

// tokens returns the tokens in force, nil when the API has none.
func (s *Server) tokens() *auth.Set {
	if s.cfg.Tokens != nil {
		if set := s.cfg.Tokens(); set.Len() > 0 {
			return set
		}
	}
	if s.cfg.Token != "" {
		return s.static
	}
	return nil
}

// authenticate finds the request's principal and checks that its scope allows the route. The
// principal rides in the request's context (audit log, reveal).
func (s *Server) authenticate(pattern string, need auth.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if need == "" {
			next(w, r)
			return
		}
		set := s.tokens()
		p := auth.Anonymous
		if set == nil && s.cfg.RequireTokens {
			writeError(w, http.StatusUnauthorized, "no API token is loaded yet on this agent", "")
			s.auditLog(r, auth.Principal{Name: "(unauthenticated)"}, http.StatusUnauthorized)
			return
		}
		if set != nil {
			bearer := auth.BearerToken(r)
			tok, ok := set.Lookup(bearer)
			if !ok {
				msg := "missing bearer token: pass --token or set CONSTELLATION_TOKEN"
				if bearer != "" || r.Header.Get("Authorization") != "" {
					msg = "invalid bearer token"
				}
				writeError(w, http.StatusUnauthorized, msg, "")
				s.auditLog(r, auth.Principal{Name: "(unauthenticated)"}, http.StatusUnauthorized)
				return
			}
			p = auth.Principal{Name: tok.Name, Scope: tok.Scope}
		}
		if !p.Allows(need) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %q has the %s scope; %s %s needs %s", p.Name, p.Scope, r.Method, r.URL.Path, need), "")
			s.auditLog(r, p, http.StatusForbidden)
			return
		}
		next(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
		if rec, ok := w.(*statusRecorder); ok {
			s.auditLog(r, p, rec.code)
		}
	}
}

// auditLog records a write (any method but GET and HEAD) or a refused request: who (the token's
// name, never its value), what, the answer. The time is the log line's.
func (s *Server) auditLog(r *http.Request, p auth.Principal, code int) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && code != http.StatusForbidden && code != http.StatusUnauthorized {
		return
	}
	s.audit.Info("api request", "who", p.Name, "scope", string(p.Scope), "method", r.Method,
		"path", r.URL.Path, "code", code, "remote", r.RemoteAddr)
}

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

// kindOf resolves the {plural} path segment; only plural names are accepted in URLs.
func kindOf(w http.ResponseWriter, r *http.Request) (v1.KindInfo, bool) {
	plural := r.PathValue("plural")
	info, ok := v1.LookupKind(plural)
	if !ok || info.Plural != plural || info.Internal() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown kind %q (known: %s)", plural, v1.KindNames()), "")
		return v1.KindInfo{}, false
	}
	return info, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	sel, err := v1.ParseSelector(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "labelSelector")
		return
	}
	if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		s.watch(w, r, info, sel)
		return
	}
	objs, rev, err := s.cfg.Store.List(r.Context(), info.Kind, sel)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	list := v1.List{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: info.Kind + "List"}, Items: []json.RawMessage{}}
	list.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	for _, o := range objs {
		b, err := encodeJSON(redact(o))
		if err != nil {
			writeError(w, http.StatusInternalServerError, "encode "+v1.KeyOf(o).String()+": "+err.Error(), "")
			return
		}
		list.Items = append(list.Items, b)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	reveal := r.URL.Query().Get("reveal") == "true"
	if reveal {
		if p, _ := auth.PrincipalFrom(r.Context()); !p.Allows(auth.ScopeAdmin) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %q has the %s scope; revealing Secret values needs admin", p.Name, p.Scope), "reveal")
			return
		}
	}
	obj, err := s.cfg.Store.Get(r.Context(), info.Kind, r.PathValue("name"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if reveal && info.Kind == v1.KindSecret {
		p, _ := auth.PrincipalFrom(r.Context())
		s.audit.Info("secret revealed", "who", p.Name, "object", v1.KeyOf(obj).String(), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, obj)
		return
	}
	writeJSON(w, http.StatusOK, redact(obj))
}

// readObject decodes, defaults and validates the body; it writes the error response itself.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, info v1.KindInfo) (v1.Object, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), "")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error(), "")
		return nil, false
	}
	name := r.PathValue("name")
	obj, err := v1.Decode(body)
	if err != nil {
		var de *v1.DecodeError
		field := ""
		if errors.As(err, &de) {
			field = de.Field
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s/%s: %v", info.Plural, name, err), field)
		return nil, false
	}
	if obj.GetTypeMeta().Kind != info.Kind {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s/%s: kind %q does not match the URL (%s)", info.Plural, name, obj.GetTypeMeta().Kind, info.Plural), "kind")
		return nil, false
	}
	if got := obj.GetMetadata().Name; got != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s/%s: metadata.name %q does not match the URL", info.Plural, name, got), "metadata.name")
		return nil, false
	}
	obj.Default()
	if errs := obj.Validate(); len(errs) > 0 {
		writeInvalid(w, info, name, errs)
		return nil, false
	}
	return obj, true
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	obj, ok := s.readObject(w, r, info)
	if !ok {
		return
	}
	if s.cfg.Admit != nil {
		if errs := s.cfg.Admit(r.Context(), obj); len(errs) > 0 {
			writeInvalid(w, info, obj.GetMetadata().Name, errs)
			return
		}
	}
	ctx := r.Context()
	if dry := r.URL.Query().Get("dryRun"); dry == "true" || dry == "All" {
		out, created, err := s.dryRun(ctx, obj)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		writeJSON(w, statusFor(created), redact(out))
		return
	}
	var out v1.Object
	var created bool
	var err error
	if svc, ok := obj.(*v1.Service); ok && svc.Spec.RestartedAt == nil {
		out, created, err = s.putKeepingRestartedAt(ctx, svc)
	} else {
		out, created, err = s.createOrUpdate(ctx, obj)
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info("object written", "object", v1.KeyOf(out).String(), "created", created, "resourceVersion", out.GetMetadata().ResourceVersion)
	writeJSON(w, statusFor(created), redact(out))
}

func statusFor(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// createOrUpdate implements PUT: update when the object exists, create otherwise. A
// resourceVersion makes it a compare-and-swap on an existing object.
//
// Which of the two to try first is decided by a local (stale) read: a write that the state
// machine refuses still costs a raft entry the size of the object on every member's log, so
// guessing wrong on every create (as trying Update first did) doubled the log of a cluster
// being filled. A stale guess is corrected by the refusal, as a race with another writer is.
func (s *Server) createOrUpdate(ctx context.Context, obj v1.Object) (v1.Object, bool, error) {
	k := v1.KeyOf(obj)
	exists := true
	if obj.GetMetadata().ResourceVersion == "" {
		_, err := s.cfg.Store.Get(ctx, k.Kind, k.Name, store.Stale())
		exists = !errors.Is(err, store.ErrNotFound)
	}
	for attempt := 0; ; attempt++ {
		if exists {
			out, err := s.cfg.Store.Update(ctx, obj)
			if err == nil {
				return out, false, nil
			}
			if !errors.Is(err, store.ErrNotFound) || attempt > 2 {
				return nil, false, err
			}
			if obj.GetMetadata().ResourceVersion != "" {
				return nil, false, fmt.Errorf("%s: %w: resourceVersion %s given but the object does not exist", k, store.ErrConflict, obj.GetMetadata().ResourceVersion)
			}
		}
		out, err := s.cfg.Store.Create(ctx, obj)
		if err == nil {
			return out, true, nil
		}
		if !errors.Is(err, store.ErrAlreadyExists) || attempt > 2 {
			return nil, false, err
		}
		exists = true
	}
}

// dryRun applies the write to a scratch copy of the current object with the store's own state
// machine, so the answer is exactly what a real write would store.
func (s *Server) dryRun(ctx context.Context, obj v1.Object) (v1.Object, bool, error) {
	k := v1.KeyOf(obj)
	table := scratchTable{}
	op := store.OpCreate
	cur, err := s.cfg.Store.Get(ctx, k.Kind, k.Name)
	switch {
	case err == nil:
		b, err := json.Marshal(cur)
		if err != nil {
			return nil, false, err
		}
		table[k] = b
		op = store.OpUpdate
		keepRestartedAt(cur, obj)
	case errors.Is(err, store.ErrNotFound):
		if obj.GetMetadata().ResourceVersion != "" {
			return nil, false, fmt.Errorf("%s: %w: resourceVersion given but the object does not exist", k, store.ErrConflict)
		}
	default:
		return nil, false, err
	}
	rev, err := s.cfg.Store.Revision(ctx)
	if err != nil {
		return nil, false, err
	}
	m, err := store.NewMutation(op, obj, time.Now(), "(dry-run)")
	if err != nil {
		return nil, false, err
	}
	res, err := store.Apply(table, rev+1, m)
	if err != nil {
		return nil, false, err
	}
	out, err := store.DecodeObject(res.Object)
	return out, op == store.OpCreate, err
}

type scratchTable map[v1.Key][]byte

func (t scratchTable) Get(kind, name string) ([]byte, error) {
	return t[v1.Key{Kind: kind, Name: name}], nil
}
func (t scratchTable) Put(kind, name string, b []byte) error {
	t[v1.Key{Kind: kind, Name: name}] = b
	return nil
}
func (t scratchTable) Delete(kind, name string) error {
	delete(t, v1.Key{Kind: kind, Name: name})
	return nil
}

func (s *Server) putStatus(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	obj, ok := s.readObject(w, r, info)
	if !ok {
		return
	}
	out, err := s.cfg.Store.UpdateStatus(r.Context(), obj)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redact(out))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	out, err := s.cfg.Store.Delete(r.Context(), info.Kind, r.PathValue("name"), r.URL.Query().Get("resourceVersion"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info("object deleted", "object", v1.KeyOf(out).String(), "finalizers", out.GetMetadata().Finalizers)
	writeJSON(w, http.StatusOK, redact(out))
}

func (s *Server) undo(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Undo == nil {
		writeError(w, http.StatusNotFound, "rollout undo is not available on this agent", "")
		return
	}
	var rev int64
	if v := r.URL.Query().Get("toRevision"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("services/%s: toRevision %q is not a revision number", r.PathValue("name"), v), "toRevision")
			return
		}
		rev = n
	}
	out, err := s.cfg.Undo(r.Context(), r.PathValue("name"), rev)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type watchEvent struct {
	Type   store.EventType `json:"type"`
	Object any             `json:"object"`
}

// watch streams newline-delimited events. Without a resourceVersion it first sends the current
// objects as ADDED, as Kubernetes does.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, info v1.KindInfo, sel v1.Selector) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WatchTimeout)
	defer cancel()
	var from int64
	var initial []v1.Object
	if rv := r.URL.Query().Get("resourceVersion"); rv != "" && rv != "0" {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("resourceVersion %q is not a revision", rv), "resourceVersion")
			return
		}
		from = n
	} else {
		objs, rev, err := s.cfg.Store.List(ctx, info.Kind, sel)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		initial, from = objs, rev
	}
	events, err := s.cfg.Store.Watch(ctx, info.Kind, from)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	send := func(ev watchEvent) bool {
		if err := enc.Encode(ev); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for _, o := range initial {
		if !send(watchEvent{Type: store.Added, Object: redact(o)}) {
			return
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	s.metrics.watches.Inc()
	defer s.metrics.watches.Dec()
	for ev := range events {
		if ev.Type == store.Error {
			code, msg := errorStatus(ev.Err)
			send(watchEvent{Type: store.Error, Object: apiError{Error: msg, Code: code}})
			return
		}
		if ev.Object == nil || !sel.Matches(ev.Object.GetMetadata().Labels) {
			continue
		}
		if !send(watchEvent{Type: ev.Type, Object: redact(ev.Object)}) {
			return
		}
	}
}

// redact hides Secret values from every response.
func redact(o v1.Object) v1.Object {
	if sec, ok := o.(*v1.Secret); ok {
		return sec.Redact()
	}
	return o
}

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// encodeJSON marshals v without HTML escaping, followed by a newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := encodeJSON(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response: "+err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	b, _ := json.Marshal(apiError{Error: msg, Field: field})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeInvalid(w http.ResponseWriter, info v1.KindInfo, name string, errs v1.ErrorList) {
	err := errs.ToAggregate(info.Plural, name)
	writeError(w, http.StatusUnprocessableEntity, err.Error(), errs[0].Field)
}

// errorStatus maps store errors to HTTP status codes.
func errorStatus(err error) (int, string) {
	var inv *v1.InvalidError
	switch {
	case errors.As(err, &inv):
		return http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, trimStorePrefix(err)
	case errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrConflict):
		return http.StatusConflict, trimStorePrefix(err)
	case errors.Is(err, store.ErrTooOld):
		return http.StatusGone, trimStorePrefix(err)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, v1.ErrUnknownKind):
		return http.StatusNotFound, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

func trimStorePrefix(err error) string { return strings.ReplaceAll(err.Error(), "store: ", "") }

func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	code, msg := errorStatus(err)
	field := ""
	var inv *v1.InvalidError
	if errors.As(err, &inv) && len(inv.Errors) > 0 {
		field = inv.Errors[0].Field
	}
	if code >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	writeError(w, code, msg, field)
}
