package nodelocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// Docker is what the node-local handlers need of the node's engine (*docker.Client).
type Docker interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Logs(ctx context.Context, id string, opts docker.LogOptions, fn func(docker.LogLine) error) error
	Exec(ctx context.Context, id string, cfg docker.ExecConfig) (*docker.Exec, error)
	Volumes(ctx context.Context, names []string) ([]docker.Volume, error)
	ContainersUsingVolume(ctx context.Context, name string) ([]docker.Container, error)
	ExportVolume(ctx context.Context, name, image string, w io.Writer) error
	ImportVolume(ctx context.Context, name, image string, r io.Reader) error
	Stats(ctx context.Context, id string) (docker.Stats, error) // stats.go
	Host(ctx context.Context) (docker.HostInfo, error)
}

var _ Docker = (*docker.Client)(nil)

// Config configures the node API.
type Config struct {
	// Node is this node's name. Required.
	Node string
	// Docker is this node's engine. Nil: the node runs no Docker (its node-local routes answer
	// 503).
	Docker Docker
	// Services lists the Services (a local, possibly stale read is fine: it only finds which
	// volumes belong to whom). Required.
	Services func(ctx context.Context) ([]*v1.Service, error)
	// Peer returns the API base URL ("https://10.0.0.2:7480") of another node's agent. Required.
	Peer func(ctx context.Context, node string) (string, error)
	// Transport carries forwarded requests to other agents (the agents' TLS). Default
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Clock stamps log errors and stats. Default clock.RealClock{}.
	Clock clock.PassiveClock
	// FetchImage, if set, makes ref present on this node's engine through its pull order
	// (other nodes, then the registry) and says where it came from ("local", a node, or
	// "registry") and the bytes copied from a node: POST /node/{node}/images/pull
	// (images.go). Nil: that route answers 503.
	FetchImage func(ctx context.Context, ref string) (from string, bytes int64, err error)
	// SendRate caps the bytes per second of image archives this node sends (images.go), all
	// transfers together. Default 0: unlimited.
	SendRate int64
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Server serves the node API.
type Server struct {
	cfg Config
	log *slog.Logger
	// sendLimit paces the image archives this node sends (nil: unlimited); images.go.
	sendLimit *rate.Limiter
}

// New returns the node API server.
func New(cfg Config) (*Server, error) {
	if cfg.Node == "" || cfg.Services == nil || cfg.Peer == nil {
		return nil, errors.New("nodeapi: Node, Services and Peer are required")
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, log: cfg.Logger, sendLimit: newSendLimiter(cfg.SendRate)}, nil
}

// Handlers returns the routes, for apiserver.Config.Handlers.
func (s *Server) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		nodeapi.LogsPattern:    s.route(s.logs),
		nodeapi.ExecPattern:    s.route(s.exec),
		nodeapi.VolumesPattern: s.route(s.volumes),
		nodeapi.BackupPattern:  s.route(s.backup),
		nodeapi.RestorePattern: s.route(s.restore),
		nodeapi.StatsPattern:   s.route(s.stats),
		// images.go
		nodeapi.ImagesPattern:    s.route(s.images),
		nodeapi.ImageSavePattern: s.route(s.imageSave),
		nodeapi.ImageLoadPattern: s.route(s.imageLoad),
		nodeapi.ImagePullPattern: s.route(s.imagePull),
	}
}

// Scopes returns the least scope of each route, for apiserver.Config.Scopes.
func Scopes() map[string]auth.Scope {
	return map[string]auth.Scope{
		nodeapi.LogsPattern:    auth.ScopeRead,
		nodeapi.ExecPattern:    auth.ScopeAdmin,
		nodeapi.VolumesPattern: auth.ScopeRead,
		nodeapi.BackupPattern:  auth.ScopeAdmin,
		nodeapi.RestorePattern: auth.ScopeAdmin,
		nodeapi.StatsPattern:   auth.ScopeRead,
		// images.go
		nodeapi.ImagesPattern:    auth.ScopeRead,
		nodeapi.ImageSavePattern: auth.ScopeAdmin,
		nodeapi.ImageLoadPattern: auth.ScopeAdmin,
		nodeapi.ImagePullPattern: auth.ScopeAdmin,
	}
}

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	b, _ := json.Marshal(apiError{Error: msg, Field: field})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// route serves a request for this node here and forwards one for another node to its agent.
func (s *Server) route(local http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node := r.PathValue("node")
		if node == s.cfg.Node {
			if s.cfg.Docker == nil {
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s runs no Docker engine", node), "")
				return
			}
			local(w, r)
			return
		}
		if by := r.Header.Get(nodeapi.HeaderForwardedBy); by != "" {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("node %s: a request for node %s forwarded by %s reached it: the node's API address in its Node object is wrong", s.cfg.Node, node, by), "")
			return
		}
		base, err := s.cfg.Peer(r.Context(), node)
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s: %v", node, err), "")
			return
		}
		target, err := url.Parse(base)
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s: API address %q: %v", node, base, err), "")
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = target.Host
				// The caller's Authorization goes along unchanged: the node checks the
				// caller's own token and scope.
				pr.Out.Header.Set(nodeapi.HeaderForwardedBy, s.cfg.Node)
			},
			Transport:     s.cfg.Transport,
			FlushInterval: -1, // log lines as they come
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if r.Context().Err() != nil {
					return
				}
				s.log.Warn("forwarding to a node failed", "node", node, "api", base, "path", r.URL.Path, "err", err)
				writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s (%s) cannot be reached: %v", node, target.Host, err), "")
			},
		}
		proxy.ServeHTTP(w, r)
	})
}

// replicaQuery reads service and index from the query.
func replicaQuery(r *http.Request) (string, int32, error) {
	q := r.URL.Query()
	svc := q.Get("service")
	if svc == "" {
		return "", 0, errors.New("service: required")
	}
	idx, err := strconv.ParseInt(q.Get("index"), 10, 32)
	if err != nil || idx < 0 {
		return "", 0, fmt.Errorf("index: %q is not a replica index", q.Get("index"))
	}
	return svc, int32(idx), nil
}

// container finds the replica's container on this node: the one named by ?container= (it must
// carry the replica's labels, so no other container of the node is reachable this way), else
// the newest, preferring a running one.
func (s *Server) container(ctx context.Context, svc string, idx int32, id string) (docker.Container, int, error) {
	cs, err := s.cfg.Docker.List(ctx, map[string]string{
		docker.LabelService: svc, docker.LabelReplica: strconv.Itoa(int(idx)), docker.LabelNode: s.cfg.Node,
	})
	if err != nil {
		return docker.Container{}, http.StatusServiceUnavailable, fmt.Errorf("node %s: %w", s.cfg.Node, err)
	}
	if id != "" {
		for _, c := range cs {
			if c.ID == id || (len(id) >= 12 && strings.HasPrefix(c.ID, id)) {
				return c, 0, nil
			}
		}
		return docker.Container{}, http.StatusNotFound, fmt.Errorf("services/%s replica %d: container %.12s is not on node %s", svc, idx, id, s.cfg.Node)
	}
	if len(cs) == 0 {
		return docker.Container{}, http.StatusNotFound, fmt.Errorf("services/%s replica %d has no container on node %s", svc, idx, s.cfg.Node)
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Running != cs[j].Running {
			return cs[i].Running
		}
		return cs[i].StartedAt.After(cs[j].StartedAt)
	})
	return cs[0], 0, nil
}

func streamName(s int) string {
	if s == docker.StreamStderr {
		return "stderr"
	}
	return "stdout"
}

// logs is GET /node/{node}/logs?service=S&index=I[&container=ID][&follow=true][&since=RFC3339][&tail=N].
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	svc, idx, err := replicaQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	q := r.URL.Query()
	opts := docker.LogOptions{Follow: q.Get("follow") == "true", Tail: -1}
	if v := q.Get("since"); v != "" {
		if opts.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since: %q is not an RFC 3339 time", v), "since")
			return
		}
	}
	if v := q.Get("tail"); v != "" {
		if opts.Tail, err = strconv.Atoi(v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("tail: %q is not a number", v), "tail")
			return
		}
	}
	ct, code, err := s.container(r.Context(), svc, idx, q.Get("container"))
	if err != nil {
		writeError(w, code, err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	short := ct.ID[:min(12, len(ct.ID))]
	err = s.cfg.Docker.Logs(r.Context(), ct.ID, opts, func(l docker.LogLine) error {
		if err := enc.Encode(nodeapi.LogEntry{Time: l.Time, Stream: streamName(l.Stream), Line: l.Text, Container: short}); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		_ = enc.Encode(nodeapi.LogEntry{Time: s.cfg.Clock.Now(), Error: fmt.Sprintf("node %s: logs of services/%s replica %d: %v", s.cfg.Node, svc, idx, err)})
		_ = rc.Flush()
	}
}

// exec is POST /node/{node}/exec?service=S&index=I&cmd=...&cmd=...[&tty=true][&stdin=true]
// [&height=H&width=W], upgraded to the exec stream.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), nodeapi.UpgradeProtocol) {
		writeError(w, http.StatusUpgradeRequired, "exec needs \"Upgrade: "+nodeapi.UpgradeProtocol+"\" (use ctl exec)", "")
		return
	}
	svc, idx, err := replicaQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	q := r.URL.Query()
	cfg := docker.ExecConfig{Cmd: q["cmd"], TTY: q.Get("tty") == "true", Stdin: q.Get("stdin") == "true"}
	if len(cfg.Cmd) == 0 {
		writeError(w, http.StatusBadRequest, "cmd: required", "cmd")
		return
	}
	if h, err := strconv.ParseUint(q.Get("height"), 10, 16); err == nil && cfg.TTY {
		cfg.Height = uint(h)
	}
	if wd, err := strconv.ParseUint(q.Get("width"), 10, 16); err == nil && cfg.TTY {
		cfg.Width = uint(wd)
	}
	ct, code, err := s.container(r.Context(), svc, idx, q.Get("container"))
	if err != nil {
		writeError(w, code, err.Error(), "")
		return
	}
	if !ct.Running {
		writeError(w, http.StatusConflict, fmt.Sprintf("services/%s replica %d on node %s is not running (container %.12s is %s)", svc, idx, s.cfg.Node, ct.ID, ct.State), "")
		return
	}
	ex, err := s.cfg.Docker.Exec(r.Context(), ct.ID, cfg)
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
		return
	}
	defer ex.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "exec: the connection cannot be upgraded: "+err.Error(), "")
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + nodeapi.UpgradeProtocol + "\r\n\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	s.log.Info("exec started", "audit", true, "service", svc, "index", idx, "container", ct.ID[:min(12, len(ct.ID))], "cmd", cfg.Cmd[0], "tty", cfg.TTY, "remote", r.RemoteAddr)
	fw := nodeapi.NewFrameWriter(conn)
	// Input: frames from the client, until it closes the connection.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	go func() {
		defer cancel()
		br := brw.Reader
		for {
			f, err := nodeapi.ReadFrame(br)
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					_ = fw.Write(nodeapi.FrameError, []byte(err.Error()))
				}
				ex.Close() // the client is gone: stop copying
				return
			}
			switch f.Type {
			case nodeapi.FrameStdin:
				if cfg.Stdin {
					_, _ = ex.Write(f.Payload)
				}
			case nodeapi.FrameCloseStdin:
				_ = ex.CloseStdin()
			case nodeapi.FrameResize:
				h, wd := f.Resize()
				_ = ex.Resize(ctx, uint(h), uint(wd))
			}
		}
	}()
	if err := ex.Output(fw.Stream(nodeapi.FrameStdout), fw.Stream(nodeapi.FrameStderr)); err != nil {
		_ = fw.Write(nodeapi.FrameError, []byte(fmt.Sprintf("node %s: exec output: %v", s.cfg.Node, err)))
		return
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	code, err = ex.Wait(wctx)
	if err != nil {
		_ = fw.Write(nodeapi.FrameError, []byte(fmt.Sprintf("node %s: exit status: %v", s.cfg.Node, err)))
		return
	}
	_ = fw.Exit(code)
}
