package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/constellation-sh/constellation/pkg/gossip"
)

// serveGossipKeys is GET GossipKeysPath.
func (a *Agent) serveGossipKeys(w http.ResponseWriter, r *http.Request) {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return
	}
	writeJSON(w, a.gossipKeyStatus())
}

// serveInstallGossipKey is POST GossipKeysPath {"key": base64}.
func (a *Agent) serveInstallGossipKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key string `json:"key"`
	}
	if !a.readPeerBody(w, r, &body) {
		return
	}
	k, err := gossip.DecodeKey(body.Key)
	if err != nil {
		writeClusterError(w, http.StatusBadRequest, "key: "+err.Error())
		return
	}
	a.answerKeyChange(w, a.installGossipKey(k), "installed", gossip.Fingerprint(k))
}

// serveUseGossipKey is PUT GossipPrimaryKeyPath {"fingerprint": fp}.
func (a *Agent) serveUseGossipKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Fingerprint string `json:"fingerprint"`
	}
	if !a.readPeerBody(w, r, &body) {
		return
	}
	a.answerKeyChange(w, a.useGossipKey(body.Fingerprint), "made primary", body.Fingerprint)
}

// serveRemoveGossipKey is DELETE GossipKeyPath.
func (a *Agent) serveRemoveGossipKey(w http.ResponseWriter, r *http.Request) {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return
	}
	fp := r.PathValue("fingerprint")
	a.answerKeyChange(w, a.removeGossipKey(fp), "removed", fp)
}

func (a *Agent) readPeerBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeClusterError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func (a *Agent) answerKeyChange(w http.ResponseWriter, err error, what, fp string) {
	if err != nil {
		code := http.StatusInternalServerError
		if ke := (*keyError)(nil); errors.As(err, &ke) {
			code = ke.code
		}
		writeClusterError(w, code, err.Error())
		return
	}
	a.log.Info("gossip key "+what, "fingerprint", fp)
	writeJSON(w, a.gossipKeyStatus())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// peerRequest is every agent-to-agent HTTP call: the API of the member at api (host:port or a
// URL), authenticated by the cluster secret. in, when not nil, is sent as JSON; a 2xx answer is
// decoded into out when not nil; another status is an error carrying the member's message.
func (a *Agent) peerRequest(ctx context.Context, method, api, path string, in, out any) error {
	base := a.joinBase(api)
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.clusterTok)
	resp, err := a.peerClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
