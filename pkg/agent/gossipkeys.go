package agent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/gossip"
)

// Gossip key rotation, Serf's way: install the new key on every member, then make it primary
// everywhere, then remove the old keys everywhere. Every member decrypts with every key it has,
// so between the steps each pair of members can still talk. The peer paths below change one
// member's keyring and are authenticated by the cluster (peer) secret; GossipRotatePath, an
// admin API route, coordinates a rotation across the cluster (`ctl cluster rotate-gossip-key`).
const (
	// GossipKeysPath: GET lists this member's key fingerprints; POST {"key": base64} installs one.
	GossipKeysPath = "/cluster/gossip/keys"
	// GossipPrimaryKeyPath: PUT {"fingerprint": fp} makes an installed key primary.
	GossipPrimaryKeyPath = "/cluster/gossip/keys/primary"
	// GossipKeyPath: DELETE removes a key that is not primary (absent: nothing to do).
	GossipKeyPath = "/cluster/gossip/keys/{fingerprint}"
	// GossipRotatePath: POST rotates the cluster's gossip key, streaming progress.
	GossipRotatePath = "/cluster/gossip/rotate"
)

// gossipKeys serialises changes to this node's keyring with their persistence, and rotations.
type gossipKeys struct {
	mu sync.Mutex // held while the keyring changes and is saved
	// rotating is held by the one rotation this node coordinates at a time.
	rotating sync.Mutex
}

// keyringStatus is a member's keyring as the peer paths show it: fingerprints, never keys.
type keyringStatus struct {
	Node    string   `json:"node"`
	Primary string   `json:"primary"`
	Keys    []string `json:"keys"`
}

// keyError is a keyring change refused or failed, with the HTTP status the peer path answers.
type keyError struct {
	code int
	msg  string
}

func (e *keyError) Error() string { return e.msg }

// authorizedPeer reports whether r carries the cluster (peer) secret.
func (a *Agent) authorizedPeer(r *http.Request) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return a.clusterTok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.clusterTok)) == 1
}

func (a *Agent) gossipKeyStatus() keyringStatus {
	kr := a.gossip.Keyring()
	return keyringStatus{Node: a.cfg.Node.Name, Primary: gossip.Fingerprint(kr.Primary()), Keys: kr.Fingerprints()}
}

// changeKeyring applies f to this node's keyring and saves the result in the data dir, so that a
// restart keeps it.
func (a *Agent) changeKeyring(f func(kr gossip.Keyring) error) error {
	a.gkeys.mu.Lock()
	defer a.gkeys.mu.Unlock()
	if err := f(a.gossip.Keyring()); err != nil {
		return err
	}
	if err := gossip.SaveKeyring(a.cfg.DataDir, a.gossip.Keyring()); err != nil {
		return &keyError{http.StatusInternalServerError, fmt.Sprintf("node %s: %v", a.cfg.Node.Name, err)}
	}
	return nil
}

func keyByFingerprint(kr gossip.Keyring, fp string) []byte {
	for _, k := range kr.Keys {
		if gossip.Fingerprint(k) == fp {
			return k
		}
	}
	return nil
}

func (a *Agent) installGossipKey(k []byte) error {
	return a.changeKeyring(func(kr gossip.Keyring) error {
		if kr.Has(k) {
			return nil
		}
		if len(kr.Keys) >= gossip.MaxKeys {
			return &keyError{http.StatusConflict, fmt.Sprintf("node %s: gossip keyring already holds %d keys; finish or rerun a rotation to remove old ones", a.cfg.Node.Name, len(kr.Keys))}
		}
		return a.gossip.InstallKey(k)
	})
}

func (a *Agent) useGossipKey(fp string) error {
	return a.changeKeyring(func(kr gossip.Keyring) error {
		k := keyByFingerprint(kr, fp)
		if k == nil {
			return &keyError{http.StatusNotFound, fmt.Sprintf("node %s: gossip key %s: not installed", a.cfg.Node.Name, fp)}
		}
		return a.gossip.UseKey(k)
	})
}

func (a *Agent) removeGossipKey(fp string) error {
	return a.changeKeyring(func(kr gossip.Keyring) error {
		k := keyByFingerprint(kr, fp)
		switch {
		case k == nil:
			return nil // removed already
		case bytes.Equal(k, kr.Primary()):
			return &keyError{http.StatusConflict, fmt.Sprintf("node %s: gossip key %s: it is the primary key; make another key primary first", a.cfg.Node.Name, fp)}
		}
		return a.gossip.RemoveKey(k)
	})
}

// adoptGossipKeyring replaces this node's keyring with the cluster's (a node that missed a
// rotation).
func (a *Agent) adoptGossipKeyring(kr gossip.Keyring) error {
	return a.changeKeyring(func(gossip.Keyring) error { return a.gossip.AdoptKeyring(kr) })
}

// loadGossipKeyring returns the keyring gossip starts with and saves it in the data dir:
//   - the data dir's gossip.keyring, once there is one (rotations change it);
//   - else --gossip.keyFile's key, as before key rotation (it seeds the keyring);
//   - else a legacy gossip.key;
//   - else, for a joining node, the cluster's keyring from the authenticated join path;
//   - else a new key (a bootstrapping node).
func (a *Agent) loadGossipKeyring() (gossip.Keyring, error) {
	dir := a.cfg.DataDir
	var fileKey []byte
	if a.cfg.Gossip.KeyFile != "" {
		s, err := config.ReadSecretFile(a.cfg.Gossip.KeyFile)
		if err != nil {
			return gossip.Keyring{}, fmt.Errorf("--gossip.keyFile: %w", err)
		}
		if fileKey, err = gossip.DecodeKey(s); err != nil {
			return gossip.Keyring{}, fmt.Errorf("--gossip.keyFile: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, gossip.KeyringFile)); err == nil {
		kr, err := gossip.LoadKeyring(dir)
		if err != nil {
			return gossip.Keyring{}, fmt.Errorf("gossip keyring: %w", err)
		}
		if fileKey != nil && !kr.Has(fileKey) {
			a.log.Warn("--gossip.keyFile holds a key that is not in the data dir's gossip keyring (rotated with `ctl cluster rotate-gossip-key`?): using the keyring",
				"keyFile", a.cfg.Gossip.KeyFile, "primary", gossip.Fingerprint(kr.Primary()))
		}
		return kr, nil
	}
	legacy, lerr := gossip.LoadKey(dir)
	if lerr != nil && !errors.Is(lerr, os.ErrNotExist) {
		return gossip.Keyring{}, fmt.Errorf("gossip key: %w", lerr)
	}
	var kr gossip.Keyring
	if legacy == nil && len(a.cfg.Join) > 0 {
		// A joining node gets the cluster's keyring through the authenticated join path.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		info, err := a.fetchGossipInfo(ctx, a.cfg.Join)
		cancel()
		if err != nil {
			return gossip.Keyring{}, err
		}
		if kr, err = info.keyring(); err != nil {
			return gossip.Keyring{}, fmt.Errorf("gossip keyring from the cluster: %w", err)
		}
		a.joinPeers = info.Peers
	}
	switch {
	case fileKey != nil:
		kr = gossip.Keyring{Keys: [][]byte{fileKey}}
	case legacy != nil:
		kr = gossip.Keyring{Keys: [][]byte{legacy}}
	case len(kr.Keys) == 0:
		k, err := gossip.NewKey()
		if err != nil {
			return gossip.Keyring{}, err
		}
		kr = gossip.Keyring{Keys: [][]byte{k}}
	}
	if err := gossip.SaveKeyring(dir, kr); err != nil {
		return gossip.Keyring{}, err
	}
	return kr, nil
}
