package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/nodelocal"
	"github.com/constellation-sh/constellation/pkg/store"
)

// nodeAPIHandlers are the per-node routes (logs, exec, volumes; pkg/nodeapi) with their scopes.
// A request for another node is forwarded to its agent with the caller's token.
func (a *Agent) nodeAPIHandlers() (map[string]http.Handler, error) {
	sendRate, err := a.cfg.Images.SendRateBytes() // validated with the config
	if err != nil {
		return nil, fmt.Errorf("--images.sendRate: %w", err)
	}
	cfg := nodelocal.Config{
		Node: a.cfg.Node.Name,
		Services: func(ctx context.Context) ([]*v1.Service, error) {
			objs, _, err := a.store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
			if err != nil {
				return nil, err
			}
			out := make([]*v1.Service, 0, len(objs))
			for _, o := range objs {
				out = append(out, o.(*v1.Service))
			}
			return out, nil
		},
		Peer:      a.peerAPI,
		Transport: a.streamTransport(),
		SendRate:  sendRate, // image archives to peers and ctl (docs/images.md)
		Logger:    a.log.With("component", "nodeapi"),
	}
	if a.docker != nil { // a nil *docker.Client must stay a nil interface
		cfg.Docker = a.docker
		cfg.FetchImage = a.fetchImageOnRequest(a.docker) // ctl image pull (peerimages.go)
	}
	s, err := nodelocal.New(cfg)
	if err != nil {
		return nil, err
	}
	h := s.Handlers()
	h[nodeapi.DiagnosticsPattern] = s.DiagnosticsHandler(a.diagnostics) // ctl doctor (diagnostics.go)
	for p, ph := range s.PeerImageHandlers() {                          // peers fetch images (peerimages.go)
		h[p] = a.peerOnly(ph)
	}
	return h, nil
}

// peerAPI is the API base URL of node's agent: its address in gossip (fresher), else in its
// Node object. A node gossip declares dead is refused at once, with its state.
func (a *Agent) peerAPI(ctx context.Context, node string) (string, error) {
	api, state, known := "", "", false
	for _, n := range a.view.Nodes() {
		if n.Name == node {
			known, state, api = true, n.State, n.API
			if !n.Alive {
				since := ""
				if !n.LastChange.IsZero() {
					since = fmt.Sprintf(" since %s", n.LastChange.UTC().Format(time.RFC3339))
				}
				return "", fmt.Errorf("unreachable: gossip reports it %s%s", n.State, since)
			}
		}
	}
	if api == "" {
		obj, err := a.store.Get(ctx, v1.KindNode, node, store.Stale())
		switch {
		case err == nil:
			known = true
			api = obj.(*v1.Node).Status.Addresses.API
		case !known:
			return "", fmt.Errorf("not a node of this cluster: %w", err)
		}
	}
	if api == "" {
		return "", fmt.Errorf("advertises no API address (gossip state %q)", state)
	}
	return a.joinBase(api), nil
}

// streamTransport carries forwarded node-API requests: the agents' mutual TLS, like
// peerClient, but without an overall timeout (log streams and exec sessions last).
func (a *Agent) streamTransport() http.RoundTripper {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:       a.certs.ClientTLS(""),
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute, // a volume's disk usage may take a while
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
}
