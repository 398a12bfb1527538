package nodelocal

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// statsParallel bounds the stats calls in flight: each holds the engine for about a second
// (it waits for a second sample), so a node with 40 replicas answers in a few seconds without
// opening 40 streams at once.
const statsParallel = 8

// stats is GET /node/{node}/stats[?service=S]: one sample of every running container this
// agent created on this node (labelled constellation.service and constellation.node), with the
// node's totals. A container whose sample fails is listed with its error, not left out.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	labels := map[string]string{docker.LabelNode: s.cfg.Node}
	if svc := r.URL.Query().Get("service"); svc != "" {
		labels[docker.LabelService] = svc
	}
	cs, err := s.cfg.Docker.List(ctx, labels)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
		return
	}
	out := nodeapi.NodeStats{Node: s.cfg.Node, Time: s.cfg.Clock.Now().UTC(), Replicas: []nodeapi.ReplicaStats{}}
	var running []docker.Container
	for _, c := range cs {
		if c.Running && c.Labels[docker.LabelService] != "" {
			running = append(running, c)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		slots = make(chan struct{}, statsParallel)
	)
	wg.Add(1)
	go func() { // the host's size, alongside the samples
		defer wg.Done()
		h, err := s.cfg.Docker.Host(ctx)
		if err != nil {
			s.log.Warn("engine info for stats failed", "err", err)
			return
		}
		mu.Lock()
		out.CPUs, out.MemoryBytes = h.CPUs, h.MemoryBytes
		mu.Unlock()
	}()
	for _, c := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			idx, _ := strconv.ParseInt(c.Labels[docker.LabelReplica], 10, 32)
			rs := nodeapi.ReplicaStats{Service: c.Labels[docker.LabelService], Index: int32(idx), Container: c.ID[:min(12, len(c.ID))]}
			st, err := s.cfg.Docker.Stats(ctx, c.ID)
			if err != nil {
				rs.Error = fmt.Sprintf("node %s: %v", s.cfg.Node, err)
			} else {
				rs.CPUPercent, rs.MemoryBytes, rs.MemoryLimitBytes, rs.PIDs = st.CPUPercent, st.MemoryBytes, st.MemoryLimitBytes, st.PIDs
			}
			mu.Lock()
			out.Replicas = append(out.Replicas, rs)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	sort.Slice(out.Replicas, func(i, j int) bool {
		a, b := out.Replicas[i], out.Replicas[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return a.Container < b.Container
	})
	for _, rs := range out.Replicas { // in this order, so that the float sum is reproducible
		out.ReplicasCPUPercent += rs.CPUPercent
		out.ReplicasMemoryBytes += rs.MemoryBytes
	}
	writeJSON(w, out)
}
