package raftstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// JoinHandler serves POST /cluster/join: a new node asks to be added as a learner. The caller
// must present the cluster token as "Authorization: Bearer TOKEN". The agent mounts it on its
// API (any member can take the request; the conf change is forwarded to the leader).
func (s *Store) JoinHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			httpError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.ClusterToken)) != 1 {
			httpError(w, http.StatusUnauthorized, "bad cluster token")
			return
		}
		req, err := decodeJoinRequest(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		m, err := s.AddLearner(r.Context(), req)
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			httpError(w, http.StatusConflict, err.Error())
			return
		case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		case err != nil:
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		resp := JoinResponse{ClusterID: s.ClusterID(), ID: m.ID}
		s.mu.Lock()
		for _, mm := range s.members {
			resp.Members = append(resp.Members, mm)
		}
		s.mu.Unlock()
		if !slices.ContainsFunc(resp.Members, func(x Member) bool { return x.ID == m.ID }) {
			resp.Members = append(resp.Members, m)
		}
		if s.cfg.JoinExtra != nil {
			resp.Extra = s.cfg.JoinExtra(req)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

func decodeJoinRequest(r io.Reader) (JoinRequest, error) {
	var req JoinRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("raftstore: decode join request: %w", err)
	}
	if !v1.IsDNSLabel(req.Name) {
		return req, fmt.Errorf("raftstore: join: name %q is not a DNS label", req.Name)
	}
	if req.RaftAddress == "" {
		return req, errors.New("raftstore: join: raftAddress is required")
	}
	return req, nil
}

func decodeJoinResponse(b []byte) (*JoinResponse, error) {
	var resp JoinResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("raftstore: decode join response: %w", err)
	}
	if resp.ID == 0 || resp.ClusterID == "" || len(resp.Members) == 0 {
		return nil, errors.New("raftstore: join response lacks an id, a cluster id or members")
	}
	for _, m := range resp.Members {
		if m.ID == 0 || m.RaftAddress == "" {
			return nil, errors.New("raftstore: join response has a member without id or address")
		}
	}
	return &resp, nil
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// joinURL turns "host:port" or a base URL into the join endpoint.
func joinURL(base string) string {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimSuffix(base, "/") + "/cluster/join"
}

// joinCluster asks members in turn to add this node until one does or ctx ends.
func joinCluster(ctx context.Context, client *http.Client, bases []string, token string, req JoinRequest, log *slog.Logger) (*JoinResponse, error) {
	body, _ := json.Marshal(req)
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		for _, base := range bases {
			resp, err := postJoin(ctx, client, joinURL(base), token, body)
			if err == nil {
				return resp, nil
			}
			lastErr = err
			log.Warn("join attempt failed", "member", base, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("raftstore: join through %v: %w (last error: %w)", bases, store.ErrUnavailable, lastErr)
		case <-time.After(time.Duration(min(attempt+1, 10)) * 200 * time.Millisecond):
		}
	}
}

func postJoin(ctx context.Context, client *http.Client, url, token string, body []byte) (*JoinResponse, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return decodeJoinResponse(b)
}
