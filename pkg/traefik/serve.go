// Serving the config: the provider and routes endpoints with ETag and 304, readiness, and the
// current config and problems.

package traefik

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Ready is nil when the configuration served is current: rendered from the latest re-list. It
// fails before the first render and while refreshing fails (the last good configuration is
// still served then). The agent's /readyz includes it.
func (p *Provider) Ready() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case p.cur == nil && !p.warm.Load():
		return fmt.Errorf("%w: %w", ErrNotRendered, ErrWarmingUp)
	case p.cur == nil && p.lastErr != nil:
		return fmt.Errorf("%w: %w", ErrNotRendered, p.lastErr)
	case p.cur == nil:
		return ErrNotRendered
	case p.lastErr != nil:
		return fmt.Errorf("traefik: refresh failing since %s; serving routes from the store read at %s, configuration rendered at %s: %w",
			p.lastErrT.UTC().Format(time.RFC3339), p.listedAt.UTC().Format(time.RFC3339), p.cur.at.UTC().Format(time.RFC3339), p.lastErr)
	}
	return nil
}

// Config returns the configuration served and its ETag; nil before the first render.
func (p *Provider) Config() (body []byte, etag string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur == nil {
		return nil, ""
	}
	return p.cur.body, p.cur.etag
}

// Problems returns the routes the current configuration leaves out, with the field to fix.
func (p *Provider) Problems() []Problem {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur == nil {
		return nil
	}
	return append([]Problem(nil), p.cur.problems...)
}

func (p *Provider) snapshot() *snapshot {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

// ServeHTTP serves GET /api/providers/traefik: the last good configuration with an ETag, 304
// for a matching If-None-Match, 503 before the first render. It never renders.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, func(s *snapshot) []byte { return s.body }, true)
}

// RoutesHandler serves GET /api/routes: a RouteList of what Traefik is being told.
func (p *Provider) RoutesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, func(s *snapshot) []byte { return s.routes }, false)
	})
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request, body func(*snapshot) []byte, isConfig bool) {
	code := p.serveCode(w, r, body, isConfig)
	if isConfig {
		p.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		p.polls.record(r, code, p.cfg.Now())
	}
}

func (p *Provider) serveCode(w http.ResponseWriter, r *http.Request, body func(*snapshot) []byte, isConfig bool) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return http.StatusMethodNotAllowed
	}
	s := p.snapshot()
	if s == nil {
		// Traefik's HTTP provider keeps its current configuration on a non-200 answer.
		w.Header().Set("Retry-After", "1")
		msg := ErrNotRendered.Error()
		if !p.warm.Load() {
			msg += ": " + ErrWarmingUp.Error()
		}
		writeError(w, http.StatusServiceUnavailable, msg)
		return http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	if isConfig {
		h.Set("ETag", s.etag)
		if etagMatch(r.Header.Get("If-None-Match"), s.etag) {
			w.WriteHeader(http.StatusNotModified)
			return http.StatusNotModified
		}
	}
	b := body(s)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return http.StatusOK
}

// etagMatch implements If-None-Match's weak comparison over a list of tags or "*".
func etagMatch(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || tag == etag || tag == "W/"+etag {
			return true
		}
	}
	return false
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
