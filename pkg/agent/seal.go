package agent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/constellation-sh/constellation/pkg/seal"
)

// sealStore wraps a.store so that Secret values are sealed at rest (pkg/seal); every reader in
// the agent gets plaintext from it as before. The keyring's key-encryption key derives from the
// cluster secret, which every member holds. In the background it creates the keyring if the
// cluster has none and seals Secrets an earlier version stored in plaintext.
func (a *Agent) sealStore() error {
	secret := a.clusterTok
	if secret == "" {
		// The in-memory store persists nothing: a key for this process alone will do.
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = hex.EncodeToString(b[:])
	}
	s, err := seal.New(a.store, secret, a.log, a.restoreSealOptions()...)
	if err != nil {
		_ = a.store.Close()
		return fmt.Errorf("secrets at rest: %w", err)
	}
	a.sealed, a.store = s, s
	a.addComponent("secrets-at-rest", s.Run)
	return nil
}
