package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Images without a registry (docs/images.md): the node reconciler asks the other alive agents
// for an image it lacks before it pulls from the registry. Each agent serves its engine's
// images on the peer paths (nodeapi.PeerImagesPath, PeerImageSavePath), authenticated by the
// cluster (peer) secret over the agents' mutual TLS, like the other peer paths.

// imageLoader is what a peer fetch needs of the local engine (*docker.Client).
type imageLoader interface {
	LoadImage(ctx context.Context, r io.Reader) (docker.LoadResult, error)
	HasImage(ctx context.Context, ref string) (bool, error)
}

var _ imageLoader = (*docker.Client)(nil)

// imagePeer is another agent that may hold an image.
type imagePeer struct {
	Node string
	// Base is its API base URL ("https://10.0.0.2:7480").
	Base string
}

// peerImages copies images from other nodes' engines into this one's.
type peerImages struct {
	// peers lists the other alive agents, in the order to ask them for ref.
	peers func(ref string) []imagePeer
	// fetched, if set, is told of each image loaded from a peer (the advertiser re-reads
	// the engine, so that the others soon know this node holds it too; the collector tracks
	// it).
	fetched func(ctx context.Context, ref string)
	// client carries the requests (mutual TLS, no overall timeout: an archive takes a while;
	// peerImageTransport).
	client *http.Client
	// alive, if set, says whether gossip still sees node alive: a fetch from a node gossip
	// declares dead is abandoned at once (checked every aliveCheck), and the next is asked,
	// rather than wait for TCP to notice a host that vanished without closing its connections.
	alive func(node string) bool
	// aliveCheck is how often alive is asked during a transfer. Default 1s.
	aliveCheck time.Duration
	// idle abandons a transfer when a read of the archive waits this long for a byte (a peer
	// that is alive but stalled). Time the local load spends writing is not counted. Default
	// peerImageIdle.
	idle time.Duration
	// secret is the cluster (peer) secret presented to them.
	secret func() string
	engine imageLoader
	log    *slog.Logger
}

// fetch asks each peer in turn for ref's `docker save` archive and loads the first one that
// arrives whole into the local engine; it returns the peer's name. A peer without the image
// answers 404 and the next is asked; a transfer cut half-way (the peer gone, a save failing)
// fails the load, which keeps nothing, and the next peer is asked. The error, when no peer
// gave the image, names what each answered.
func (p *peerImages) fetch(ctx context.Context, ref string, progress func(node string, bytes int64)) (string, error) {
	peers := p.peers(ref)
	if len(peers) == 0 {
		return "", errors.New("no other alive node to ask")
	}
	var why []string
	for _, peer := range peers {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := p.fetchFrom(ctx, peer, ref, func(n int64) { progress(peer.Node, n) })
		if err == nil {
			p.log.Info("image copied from a peer", "image", ref, "from", peer.Node, "bytes", n)
			if p.fetched != nil {
				p.fetched(ctx, ref)
			}
			return peer.Node, nil
		}
		if errors.Is(err, errNoImage) {
			p.log.Debug("peer cannot give the image", "image", ref, "node", peer.Node, "err", err)
		} else {
			p.log.Warn("peer transfer failed, asking the next", "image", ref, "node", peer.Node, "bytes", n, "err", err)
		}
		why = append(why, fmt.Sprintf("%s: %v", peer.Node, err))
	}
	return "", fmt.Errorf("no other node gave image %s (%s)", ref, strings.Join(why, "; "))
}

// errNoImage is a peer's 404: it does not have the image.
var errNoImage = errors.New("has no such image")

// peerImageIdle is how long a read of a peer's archive may wait for a byte before the
// transfer is abandoned (peerImages.idle): a save sends steadily once it started, even paced
// by a low --images.sendRate (a burst every 50 ms).
const peerImageIdle = 30 * time.Second

func (p *peerImages) fetchFrom(ctx context.Context, peer imagePeer, ref string, progress func(int64)) (n int64, err error) {
	// The stream ends with ctx only: a cancelled fetch closes the connection and the load.
	// A peer gossip declares dead or a stalled read cancels it with its cause, which is then
	// the error.
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer func() {
		if err != nil && parent.Err() == nil && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
			err = context.Cause(ctx)
		}
	}()
	if p.alive != nil {
		every := p.aliveCheck
		if every <= 0 {
			every = time.Second
		}
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if !p.alive(peer.Node) {
						cancel(fmt.Errorf("gossip reports node %s dead: transfer abandoned", peer.Node))
						return
					}
				}
			}
		}()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer.Base+nodeapi.PeerImageSavePath+"?"+url.Values{"ref": {ref}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.secret())
	req.Header.Set("Accept", "application/x-tar")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, errNoImage
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return 0, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	idle := p.idle
	if idle <= 0 {
		idle = peerImageIdle
	}
	stalled := time.AfterFunc(time.Hour, func() {
		cancel(fmt.Errorf("node %s sent nothing for %s: transfer abandoned", peer.Node, idle))
	})
	stalled.Stop()
	defer stalled.Stop()
	body := &archiveReader{resp: resp, progress: progress, idle: idle, stalled: stalled}
	if _, err := p.engine.LoadImage(ctx, body); err != nil {
		return body.count(), err
	}
	// The archive may carry other tags than ref asked them (an ID, a digest): the engine
	// must now resolve ref itself.
	ok, err := p.engine.HasImage(ctx, ref)
	if err != nil {
		return body.count(), err
	}
	if !ok {
		return body.count(), fmt.Errorf("its archive loaded but the engine still has no image %s", ref)
	}
	return body.count(), nil
}

// archiveReader counts the bytes of a peer's archive and turns an error the peer sent in the
// trailer (a save that failed after the first byte) into a read error, so that the load fails
// rather than take a cut archive.
type archiveReader struct {
	resp     *http.Response
	progress func(int64)
	// stalled fires when one read waits idle for a byte; it runs only during a read, so the
	// time the load spends writing what it read does not count.
	idle    time.Duration
	stalled *time.Timer

	mu sync.Mutex
	n  int64 // guarded by mu
}

func (a *archiveReader) Read(b []byte) (int, error) {
	a.stalled.Reset(a.idle)
	k, err := a.resp.Body.Read(b)
	a.stalled.Stop()
	a.mu.Lock()
	a.n += int64(k)
	n := a.n
	a.mu.Unlock()
	if k > 0 {
		a.progress(n)
	}
	if errors.Is(err, io.EOF) {
		if msg := a.resp.Trailer.Get(nodeapi.TrailerError); msg != "" {
			return k, errors.New(msg)
		}
	}
	return k, err
}

func (a *archiveReader) count() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// imagePeers are the other nodes gossip sees alive with an API address: first those that
// advertise ref (imageadvert.go), then the others, each group sorted by name. An
// advertisement is a hint (a stale list, a key collision): a node that advertises ref but
// answers 404 only costs one request before the next is asked, and the nodes that advertise
// nothing (older agents, an image pulled since their last advertisement) are still asked.
func (a *Agent) imagePeers(ref string) []imagePeer {
	holds := map[string]bool{}
	for _, n := range a.view.NodesWithImage(ref) {
		holds[n] = true
	}
	var out []imagePeer
	for _, n := range a.view.Nodes() {
		if n.Name == a.cfg.Node.Name || !n.Alive || n.API == "" {
			continue
		}
		out = append(out, imagePeer{Node: n.Name, Base: a.joinBase(n.API)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if holds[out[i].Node] != holds[out[j].Node] {
			return holds[out[i].Node]
		}
		return out[i].Node < out[j].Node
	})
	return out
}

// reconcilerImages is the image side of the node reconciler on this agent's engine: the
// engine it uses, whose registry pulls the collector tracks (--images.gcAfter), and its
// PeerFetch. It also starts the advertisement of the engine's images through gossip
// (imageadvert.go), which the fetches of the other nodes use to ask this one first, and the
// collector when it is on.
func (a *Agent) reconcilerImages(dc *docker.Client) (docker.Engine, func(ctx context.Context, ref string, progress func(string, int64)) (string, error)) {
	ad := newImageAdvertiser(dc, a.gossip.SetLocalImages, a.serviceImages, imageAdvertInterval, a.log)
	a.addComponent("image-advertiser", ad.run)
	gc := a.imageGCFor(dc) // nil unless --images.gcAfter
	loaded := func(ctx context.Context, ref string) {
		ad.kick()
		if gc != nil {
			gc.track(ctx, ref)
		}
	}
	var engine docker.Engine = dc
	if gc != nil {
		engine = trackedPulls{Client: dc, pull: dc.PullImage, pulled: loaded}
	}
	return engine, a.newPeerImages(dc, loaded).fetch
}

// trackedPulls is the engine with its registry pulls reported to pulled (the collector
// tracks them like the images loaded from peers). The node reconciler pulls only an image
// it lacks for a replica, never one the operator put there. It embeds the client itself, not
// docker.Engine, so that the reconciler's checks for more (Execer, FileCopier) still find them.
type trackedPulls struct {
	*docker.Client
	pull   func(ctx context.Context, ref string, progress func(docker.PullProgress)) error // the client's
	pulled func(ctx context.Context, ref string)
}

func (t trackedPulls) PullImage(ctx context.Context, ref string, progress func(docker.PullProgress)) error {
	if err := t.pull(ctx, ref, progress); err != nil {
		return err
	}
	t.pulled(ctx, ref)
	return nil
}

var _ docker.Engine = trackedPulls{}

// newPeerImages fetches images from the other agents into engine; fetched (may be nil) is
// told of each.
func (a *Agent) newPeerImages(engine imageLoader, fetched func(ctx context.Context, ref string)) *peerImages {
	return &peerImages{
		peers:   a.imagePeers,
		fetched: fetched,
		client:  &http.Client{Transport: a.peerImageTransport()},
		alive:   a.nodeAlive,
		secret:  func() string { return a.clusterTok },
		engine:  engine,
		log:     a.log.With("component", "peer-images"),
	}
}

// imagePuller is what a fetch on request needs of the local engine (*docker.Client).
type imagePuller interface {
	imageLoader
	PullImage(ctx context.Context, ref string, progress func(docker.PullProgress)) error
}

var _ imagePuller = (*docker.Client)(nil)

// fetchImageOnRequest is POST /node/{node}/images/pull (`ctl image pull REF --to NODE`): the
// node's pull order on request — nothing when the engine has ref, else the other agents, else
// the registry. An image fetched this way is the operator's, like one pushed: the collector
// does not track it, and the advertisement shows it at its next re-read (30 s).
func (a *Agent) fetchImageOnRequest(engine imagePuller) func(ctx context.Context, ref string) (string, int64, error) {
	return fetchOnRequest(engine, a.newPeerImages(engine, nil))
}

// fetchOnRequest is fetchImageOnRequest's pull order with p asking the peers.
func fetchOnRequest(engine imagePuller, p *peerImages) func(ctx context.Context, ref string) (string, int64, error) {
	return func(ctx context.Context, ref string) (string, int64, error) {
		ok, err := engine.HasImage(ctx, ref)
		if err != nil {
			return "", 0, err
		}
		if ok {
			return "local", 0, nil
		}
		var n atomic.Int64
		from, perr := p.fetch(ctx, ref, func(_ string, b int64) { n.Store(b) })
		if perr == nil {
			return from, n.Load(), nil
		}
		if ctx.Err() != nil {
			return "", 0, perr
		}
		if err := engine.PullImage(ctx, ref, func(docker.PullProgress) {}); err != nil {
			return "", 0, fmt.Errorf("%w (peers: %v)", err, perr)
		}
		return "registry", 0, nil
	}
}

// nodeAlive says whether gossip sees node alive now.
func (a *Agent) nodeAlive(node string) bool {
	for _, n := range a.view.Nodes() {
		if n.Name == node {
			return n.Alive
		}
	}
	return false
}

// peerImageTransport carries the peer image fetches: the agents' mutual TLS, like
// streamTransport, and TCP keepalives that notice a peer host gone without a word (its
// connection never closes: no FIN, no RST) within about 15 s, in every phase of the request.
// The response-header timeout stays long: the engine's save writes the whole image to a
// temporary directory before its first byte (minutes for GBs on a slow disk); a dead peer is
// noticed sooner by gossip (peerImages.alive) or the keepalives.
func (a *Agent) peerImageTransport() http.RoundTripper {
	return &http.Transport{
		DialContext: (&net.Dialer{Timeout: 5 * time.Second,
			KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 2}}).DialContext,
		TLSClientConfig:       a.certs.ClientTLS(""),
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
}

// peerOnly serves h to callers presenting the cluster (peer) secret; others get 401.
func (a *Agent) peerOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authorizedPeer(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"` + r.URL.Path + `: needs the cluster (peer) secret"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
