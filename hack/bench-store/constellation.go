package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
)

func startConstellation(dir, value string, keys int) (writer, func() diskCounts, func(), error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var stores []*raftstore.Store
	var regs []*prometheus.Registry
	var servers []*http.Server
	stop := func() {
		for _, s := range servers {
			_ = s.Close()
		}
		for _, s := range stores {
			_ = s.Close()
		}
	}
	var apiURLs []string
	for i := range 3 {
		raftAddr, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		apiAddr, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		cfg := raftstore.DefaultConfig()
		cfg.NodeName = fmt.Sprintf("c%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.NodeName)
		cfg.RaftAddress = raftAddr
		cfg.ClusterToken = "bench"
		cfg.PromoteInterval = 100 * time.Millisecond
		if i > 0 {
			cfg.Join = apiURLs[:1]
		}
		// The join handler must be served before the next member joins.
		ln, err := net.Listen("tcp", apiAddr)
		if err != nil {
			return nil, nil, stop, err
		}
		var s *raftstore.Store
		var mu sync.Mutex
		mux := http.NewServeMux()
		mux.HandleFunc("POST /cluster/join", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			st := s
			mu.Unlock()
			st.JoinHandler().ServeHTTP(w, r)
		})
		mux.HandleFunc("PUT /put/{name}", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			st := s
			mu.Unlock()
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			if err := putObject(r.Context(), st, r.PathValue("name"), string(body)); err != nil {
				http.Error(w, err.Error(), 503)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		srv := &http.Server{Handler: mux}
		servers = append(servers, srv)
		mu.Lock()
		go func() { _ = srv.Serve(ln) }()
		reg := prometheus.NewRegistry()
		regs = append(regs, reg)
		s, err = raftstore.Open(cfg, logger, reg)
		mu.Unlock()
		if err != nil {
			return nil, nil, stop, err
		}
		stores = append(stores, s)
		apiURLs = append(apiURLs, "http://"+apiAddr)
	}
	// Wait for three voters and a leader.
	deadline := time.Now().Add(60 * time.Second)
	lead := -1
	for time.Now().Before(deadline) && lead < 0 {
		voters := 0
		for _, m := range stores[0].Members() {
			if m.Role == v1.RaftLeader || m.Role == v1.RaftFollower {
				voters++
			}
		}
		if voters == 3 {
			for i, s := range stores {
				if s.Role() == v1.RaftLeader {
					lead = i
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lead < 0 {
		return nil, nil, stop, errors.New("constellation cluster did not form")
	}
	leaderName = fmt.Sprintf("c%d", lead)
	url := apiURLs[lead] + "/put/"
	w := func(ctx context.Context, client *http.Client, i int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%sk%d", url, i%keys), strings.NewReader(freshValue(value)))
		return doOK(client, req, "put")
	}
	counts := func() diskCounts {
		var c diskCounts
		for i, reg := range regs {
			syncs := promCount(reg, "constellation_store_wal_fsync_seconds")
			commits := promCount(reg, "constellation_store_bolt_commit_seconds")
			c.fdatasyncs += syncs + 2*commits // a bbolt commit is two fdatasyncs
			if i == lead {
				c.leaderCommits = syncs
				_, c.syncSeconds = promHist(reg, "constellation_store_wal_fsync_seconds")
				c.boltCommits, c.boltSeconds = promHist(reg, "constellation_store_bolt_commit_seconds")
			}
		}
		return c
	}
	return w, counts, stop, nil
}

// leaderName is the member the benchmark writes through (c0 bootstrapped the cluster).
var leaderName string

// putObject writes a Secret holding the value: an update, or a create the first time.
func putObject(ctx context.Context, s *raftstore.Store, name, value string) error {
	obj := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
	obj.Metadata.Name = name
	obj.Spec.Data = map[string]string{"value": value}
	_, err := s.Update(ctx, obj)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.Create(ctx, obj)
		if errors.Is(err, store.ErrAlreadyExists) {
			_, err = s.Update(ctx, obj)
		}
	}
	return err
}
