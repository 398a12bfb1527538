// Command crashnode runs one raftstore member behind a minimal HTTP API, for the
// process-level crash test (TestProcessCrash in pkg/store/raftstore): it is killed with
// SIGKILL during a write burst and restarted on the same data dir.
//
//	PUT  /put/{name}      create a Service named name; answers its resourceVersion
//	GET  /list            linearizable list of Services: {"revision":N,"items":{"name":"rv"}}
//	GET  /members         the members and their roles
//	POST /cluster/join    raftstore's join handler
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

func main() {
	name := flag.String("name", "", "node name")
	dir := flag.String("dir", "", "data dir")
	raftAddr := flag.String("raft", "", "raft address")
	apiAddr := flag.String("api", "", "API address")
	join := flag.String("join", "", "comma-separated API addresses to join through")
	token := flag.String("token", "crash-test", "cluster token")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var mu sync.Mutex
	var s *raftstore.Store
	get := func() *raftstore.Store { mu.Lock(); defer mu.Unlock(); return s }

	mux := http.NewServeMux()
	mux.HandleFunc("POST /cluster/join", func(w http.ResponseWriter, r *http.Request) {
		if st := get(); st != nil {
			st.JoinHandler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("PUT /put/{name}", func(w http.ResponseWriter, r *http.Request) {
		st := get()
		if st == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		o, err := st.Create(r.Context(), storetest.Service(r.PathValue("name"), nil))
		if err != nil {
			code := http.StatusServiceUnavailable
			if errors.Is(err, store.ErrAlreadyExists) {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
			return
		}
		fmt.Fprint(w, o.GetMetadata().ResourceVersion)
	})
	mux.HandleFunc("GET /list", func(w http.ResponseWriter, r *http.Request) {
		st := get()
		if st == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		objs, rev, err := st.List(r.Context(), v1.KindService, v1.Selector{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		items := map[string]string{}
		for _, o := range objs {
			items[o.GetMetadata().Name] = o.GetMetadata().ResourceVersion
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"revision": rev, "items": items})
	})
	mux.HandleFunc("GET /members", func(w http.ResponseWriter, r *http.Request) {
		st := get()
		if st == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(st.Members())
	})
	srv := &http.Server{Addr: *apiAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("api", "err", err)
			os.Exit(1)
		}
	}()

	cfg := raftstore.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.RaftAddress, cfg.ClusterToken = *name, *dir, *raftAddr, *token
	cfg.TickInterval = 50 * time.Millisecond
	cfg.PromoteInterval = 100 * time.Millisecond
	cfg.SnapshotEntries = 500
	cfg.CatchUpEntries = 100
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	st, err := raftstore.Open(cfg, logger, nil)
	if err != nil {
		logger.Error("open", "err", err)
		os.Exit(1)
	}
	mu.Lock()
	s = st
	mu.Unlock()
	select {} // until killed
}
