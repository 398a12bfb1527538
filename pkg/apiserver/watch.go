package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

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
