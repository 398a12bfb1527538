// The volume routes: a replica's named volumes, and their backup and restore as tar streams.

package nodelocal

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// namedVolumes are the named (not bind) volumes of svc.
func namedVolumes(svc *v1.Service) []string {
	var out []string
	for _, v := range svc.Spec.Volumes {
		if v.Source != "" && !strings.HasPrefix(v.Source, "/") && !slices.Contains(out, v.Source) {
			out = append(out, v.Source)
		}
	}
	return out
}

// volumes is GET /node/{node}/volumes[?service=S]: the Services' named volumes on this node.
func (s *Server) volumes(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	want := r.URL.Query().Get("service")
	svcs, err := s.cfg.Services(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: list services: %v", s.cfg.Node, err), "")
		return
	}
	owners := map[string][]*v1.Service{} // volume → Services mounting it
	var names []string
	for _, svc := range svcs {
		if want != "" && svc.Metadata.Name != want {
			continue
		}
		for _, v := range namedVolumes(svc) {
			if owners[v] == nil {
				names = append(names, v)
			}
			owners[v] = append(owners[v], svc)
		}
	}
	out := nodeapi.VolumeList{Items: []nodeapi.VolumeInfo{}}
	if len(names) == 0 {
		writeJSON(w, out)
		return
	}
	vols, err := s.cfg.Docker.Volumes(ctx, names)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
		return
	}
	for _, vol := range vols {
		users, err := s.cfg.Docker.ContainersUsingVolume(ctx, vol.Name)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
			return
		}
		var running []string
		for _, c := range users {
			if c.Running {
				running = append(running, c.Name)
			}
		}
		for _, svc := range owners[vol.Name] {
			info := nodeapi.VolumeInfo{Node: s.cfg.Node, Volume: vol.Name, Service: svc.Metadata.Name, SizeBytes: vol.Size, CreatedAt: vol.CreatedAt, InUseBy: running}
			for _, c := range users {
				if c.Labels[docker.LabelService] != svc.Metadata.Name {
					continue
				}
				if i, err := strconv.ParseInt(c.Labels[docker.LabelReplica], 10, 32); err == nil && !slices.Contains(info.Replicas, int32(i)) {
					info.Replicas = append(info.Replicas, int32(i))
				}
			}
			slices.Sort(info.Replicas)
			out.Items = append(out.Items, info)
		}
	}
	sort.Slice(out.Items, func(i, j int) bool {
		a, b := out.Items[i], out.Items[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Volume < b.Volume
	})
	writeJSON(w, out)
}

// archiveTarget checks that {volume} is a named volume of ?service= and picks an image to
// mount it in: the replica's container's, else the Service's.
func (s *Server) archiveTarget(w http.ResponseWriter, r *http.Request) (svcName, volume, image string, idx int32, ok bool) {
	svcName, idx, err := replicaQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return "", "", "", 0, false
	}
	volume = r.PathValue("volume")
	svcs, err := s.cfg.Services(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: list services: %v", s.cfg.Node, err), "")
		return "", "", "", 0, false
	}
	var svc *v1.Service
	for _, o := range svcs {
		if o.Metadata.Name == svcName {
			svc = o
		}
	}
	if svc == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("services/%s not found", svcName), "")
		return "", "", "", 0, false
	}
	if !slices.Contains(namedVolumes(svc), volume) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("services/%s mounts no named volume %q (it mounts %v)", svcName, volume, namedVolumes(svc)), "")
		return "", "", "", 0, false
	}
	image = svc.Spec.Image
	if ct, _, err := s.container(r.Context(), svcName, idx, ""); err == nil && ct.Image != "" {
		image = ct.Image
	}
	return svcName, volume, image, idx, true
}

// lazyWriter sends the response's header at the first byte, so an error before any byte is
// still a proper status.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
	n       int64
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-tar")
		l.w.Header().Set("Trailer", nodeapi.TrailerError)
		l.w.WriteHeader(http.StatusOK)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// backup is GET /node/{node}/volumes/{volume}/archive?service=S&index=I: a tar of the volume.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	svc, volume, image, idx, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	lw := &lazyWriter{w: w}
	err := s.cfg.Docker.ExportVolume(r.Context(), volume, image, lw)
	switch {
	case err == nil:
		if !lw.started {
			_, _ = lw.Write(nil)
		}
		s.log.Info("volume backed up", "audit", true, "service", svc, "index", idx, "volume", volume, "bytes", lw.n, "remote", r.RemoteAddr)
	case !lw.started:
		code := http.StatusBadGateway
		if errors.Is(err, docker.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Sprintf("node %s: backup of volume %s: %v", s.cfg.Node, volume, err), "")
	default:
		w.Header().Set(nodeapi.TrailerError, fmt.Sprintf("node %s: backup of volume %s: %v", s.cfg.Node, volume, err))
	}
}

// restore is PUT /node/{node}/volumes/{volume}/archive?service=S&index=I with a tar body:
// extracted into the volume, refused while a running container mounts it.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	svc, volume, image, idx, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	users, err := s.cfg.Docker.ContainersUsingVolume(r.Context(), volume)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
		return
	}
	var running []string
	for _, c := range users {
		if c.Running {
			running = append(running, c.Name)
		}
	}
	if len(running) > 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("volume %s on node %s is mounted by running container(s) %s: restore only into a stopped replica (scale services/%s to 0 first: ctl scale svc/%s --replicas 0, or apply replicas: 0)",
			volume, s.cfg.Node, strings.Join(running, ", "), svc, svc), "")
		return
	}
	cr := &countReader{r: r.Body}
	if err := s.cfg.Docker.ImportVolume(r.Context(), volume, image, cr); err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, docker.ErrBadArchive):
			code = http.StatusBadRequest
		case errors.Is(err, docker.ErrNotFound):
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Sprintf("node %s: restore of volume %s: %v", s.cfg.Node, volume, err), "")
		return
	}
	s.log.Info("volume restored", "audit", true, "service", svc, "index", idx, "volume", volume, "bytes", cr.n, "remote", r.RemoteAddr)
	writeJSON(w, nodeapi.RestoreResult{Node: s.cfg.Node, Volume: volume, Bytes: cr.n})
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
