package traefik

import (
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Poll is one client of the provider endpoint: the last time it fetched the configuration.
// `ctl doctor` reports it ("every LB's Traefik polls its agent").
type Poll struct {
	Client string    // remote IP
	Agent  string    // User-Agent of the last request
	Last   time.Time // when its last request was answered
	Status int       // the HTTP status of that answer (200, 304, 503, ...)
	Count  int64     // requests since the agent started
}

// maxPollers bounds the record: the oldest client is forgotten beyond it.
const maxPollers = 64

// pollTracker records the last request per client; the zero value is ready.
type pollTracker struct {
	mu sync.Mutex
	// guarded by mu:
	by map[string]*Poll
}

func (t *pollTracker) record(r *http.Request, status int, now time.Time) {
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.by == nil {
		t.by = map[string]*Poll{}
	}
	p := t.by[ip]
	if p == nil {
		if len(t.by) >= maxPollers {
			t.evictOldestLocked()
		}
		p = &Poll{Client: ip}
		t.by[ip] = p
	}
	p.Agent, p.Last, p.Status = r.UserAgent(), now, status
	p.Count++
}

func (t *pollTracker) evictOldestLocked() {
	var oldest *Poll
	for _, p := range t.by {
		if oldest == nil || p.Last.Before(oldest.Last) {
			oldest = p
		}
	}
	if oldest != nil {
		delete(t.by, oldest.Client)
	}
}

// Polls returns every client that fetched the provider configuration, most recent first.
func (p *Provider) Polls() []Poll {
	t := &p.polls
	t.mu.Lock()
	out := make([]Poll, 0, len(t.by))
	for _, v := range t.by {
		out = append(out, *v)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Last.Equal(out[j].Last) {
			return out[i].Last.After(out[j].Last)
		}
		return out[i].Client < out[j].Client
	})
	return out
}
