package nodelocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/time/rate"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// ImageEngine is what the image routes need of the node's engine (*docker.Client). A Docker
// that does not implement it answers the image routes 503.
type ImageEngine interface {
	Images(ctx context.Context) ([]docker.Image, error)
	ImageID(ctx context.Context, ref string) (string, error)
	SaveImage(ctx context.Context, ref string, w io.Writer) (int64, error)
	LoadImage(ctx context.Context, r io.Reader) (docker.LoadResult, error)
}

var _ ImageEngine = (*docker.Client)(nil)

// PeerImageHandlers serve this node's image archives on the peer path
// (nodeapi.PeerImageSavePath), never forwarded: the caller wraps them in its
// check of the cluster (peer) secret, which the other agents present when they fetch an image.
func (s *Server) PeerImageHandlers() map[string]http.Handler {
	local := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.cfg.Docker == nil {
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s runs no Docker engine", s.cfg.Node), "")
				return
			}
			h(w, r)
		})
	}
	return map[string]http.Handler{
		nodeapi.PeerImageSavePattern: local(s.imageSave),
	}
}

func (s *Server) imageEngine(w http.ResponseWriter) (ImageEngine, bool) {
	e, ok := s.cfg.Docker.(ImageEngine)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: its engine client cannot list, save or load images", s.cfg.Node), "")
	}
	return e, ok
}

// images is GET /node/{node}/images: the engine's images.
func (s *Server) images(w http.ResponseWriter, r *http.Request) {
	e, ok := s.imageEngine(w)
	if !ok {
		return
	}
	ims, err := e.Images(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
		return
	}
	out := nodeapi.ImageList{Node: s.cfg.Node, Items: make([]nodeapi.ImageInfo, 0, len(ims))}
	for _, im := range ims {
		out.Items = append(out.Items, nodeapi.ImageInfo{ID: im.ID, RepoTags: im.RepoTags, RepoDigests: im.RepoDigests, SizeBytes: im.Size, Created: im.Created})
	}
	writeJSON(w, out)
}

// imageSave is GET /node/{node}/images/archive?ref=REF: `docker save REF` as a stream (its
// length is not known ahead); 404 naming the ref when the engine has no such image. An error
// after the first byte is sent in the trailer.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) {
	e, ok := s.imageEngine(w)
	if !ok {
		return
	}
	ref, ok := refParam(w, r)
	if !ok {
		return
	}
	if _, err := e.ImageID(r.Context(), ref); err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, docker.ErrImageNotFound) {
			code = http.StatusNotFound
			err = fmt.Errorf("no image %s", ref)
		}
		writeError(w, code, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "ref")
		return
	}
	lw := &lazyWriter{w: w}
	var out io.Writer = lw
	if s.sendLimit != nil {
		out = &pacedWriter{ctx: r.Context(), w: lw, lim: s.sendLimit}
	}
	n, err := e.SaveImage(r.Context(), ref, out)
	switch {
	case err == nil:
		if !lw.started {
			_, _ = lw.Write(nil)
		}
		s.log.Info("image sent", "image", ref, "bytes", n, "remote", r.RemoteAddr)
	case !lw.started:
		code := http.StatusBadGateway
		if errors.Is(err, docker.ErrImageNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Sprintf("node %s: save image %s: %v", s.cfg.Node, ref, err), "")
	default:
		w.Header().Set(nodeapi.TrailerError, fmt.Sprintf("node %s: save image %s: %v", s.cfg.Node, ref, err))
	}
}

// imageLoad is PUT /node/{node}/images/archive with a `docker save` tar body: `docker load`.
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) {
	e, ok := s.imageEngine(w)
	if !ok {
		return
	}
	cr := &countReader{r: r.Body}
	res, err := e.LoadImage(r.Context(), cr)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, docker.ErrBadImageArchive) {
			code = http.StatusBadRequest
		}
		writeError(w, code, fmt.Sprintf("node %s: %v", s.cfg.Node, err), "")
		return
	}
	out := nodeapi.ImageLoadResult{Node: s.cfg.Node, Loaded: res.Loaded, Bytes: cr.n}
	for _, ref := range res.Loaded {
		id, err := e.ImageID(r.Context(), ref)
		if err != nil {
			id = ""
		}
		out.IDs = append(out.IDs, id)
	}
	s.log.Info("image loaded", "audit", true, "images", res.Loaded, "bytes", cr.n, "remote", r.RemoteAddr)
	writeJSON(w, out)
}

// imagePull is POST /node/{node}/images/pull?ref=REF: the node fetches REF through its pull
// order (Config.FetchImage) and answers where it came from. Admin: it can re-point a tag that
// Services run, like a load.
func (s *Server) imagePull(w http.ResponseWriter, r *http.Request) {
	e, ok := s.imageEngine(w)
	if !ok {
		return
	}
	ref, ok := refParam(w, r)
	if !ok {
		return
	}
	if s.cfg.FetchImage == nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("node %s cannot fetch images", s.cfg.Node), "")
		return
	}
	from, n, err := s.cfg.FetchImage(r.Context(), ref)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, docker.ErrImageNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Sprintf("node %s: fetch image %s: %v", s.cfg.Node, ref, err), "ref")
		return
	}
	id, err := e.ImageID(r.Context(), ref)
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s: image %s fetched from %s but: %v", s.cfg.Node, ref, from, err), "ref")
		return
	}
	s.log.Info("image fetched on request", "audit", true, "image", ref, "from", from, "bytes", n, "remote", r.RemoteAddr)
	writeJSON(w, nodeapi.ImagePullResult{Node: s.cfg.Node, Ref: ref, ID: id, From: from, Bytes: n})
}

// newSendLimiter paces the image archives a node sends to bytesPerSec, all of them together
// (--images.sendRate: the link is shared, so two peers fetching at once get half each); nil
// when bytesPerSec is 0 (unlimited). Its burst, the most written at once, is a twentieth of
// a second's worth, between 1 byte and 64 KiB, so that the pace is even at any rate.
func newSendLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := int(min(max(bytesPerSec/20, 1), 64<<10))
	return rate.NewLimiter(rate.Limit(bytesPerSec), burst)
}

// pacedWriter writes to w no faster than lim allows, in pieces of at most its burst; it stops
// when ctx ends (the receiver went away).
type pacedWriter struct {
	ctx context.Context
	w   io.Writer
	lim *rate.Limiter
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), p.lim.Burst())
		if err := p.lim.WaitN(p.ctx, k); err != nil {
			return n, fmt.Errorf("pace the archive (--images.sendRate): %w", err)
		}
		m, err := p.w.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// refParam is the request's ?ref= (an image reference or ID); without one it answers 400 and
// ok is false.
func refParam(w http.ResponseWriter, r *http.Request) (ref string, ok bool) {
	ref = r.URL.Query().Get("ref")
	if ref == "" {
		writeError(w, http.StatusBadRequest, "ref: required (an image reference or ID)", "ref")
		return "", false
	}
	return ref, true
}
