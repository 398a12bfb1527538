package ctl_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/constellation-sh/constellation/pkg/apiserver"
)

// fakeRotation streams POST /cluster/gossip/rotate as the agent does: the agent's coordinator is
// tested with whole agents in pkg/agent; this checks what ctl prints of the stream.
func fakeRotation(fail bool) func(*apiserver.Config) {
	return func(cfg *apiserver.Config) {
		cfg.Handlers["POST /cluster/gossip/rotate"] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			enc := json.NewEncoder(w)
			emit := func(ev map[string]any) { _ = enc.Encode(ev) }
			emit(map[string]any{"step": "plan", "total": 2, "members": []string{"n1", "n2"}, "primary": "0123abcd0123abcd"})
			emit(map[string]any{"step": "skip", "node": "n3", "message": "not alive in gossip (dead): it adopts the new keyring from a member when it rejoins"})
			emit(map[string]any{"step": "install", "node": "n1", "done": 1, "total": 2})
			if fail {
				emit(map[string]any{"step": "error", "error": "install the new gossip key on node n2: connection refused; nothing was switched"})
				return
			}
			emit(map[string]any{"step": "install", "node": "n2", "done": 2, "total": 2})
			emit(map[string]any{"step": "use", "node": "n1", "done": 1, "total": 2})
			emit(map[string]any{"step": "use", "node": "n2", "done": 2, "total": 2})
			emit(map[string]any{"step": "remove", "node": "n1", "done": 1, "total": 2})
			emit(map[string]any{"step": "remove", "node": "n2", "done": 2, "total": 2})
			emit(map[string]any{"step": "done", "primary": "0123abcd0123abcd", "total": 2})
		})
	}
}

func TestClusterRotateGossipKey(t *testing.T) {
	plan := "rotating the gossip key on 2 members (n1, n2): new key 0123abcd0123abcd\n" +
		"skipped node/n3: not alive in gossip (dead): it adopts the new keyring from a member when it rejoins\n" +
		"installed on node/n1 (1 of 2)\n"
	c := newCluster(t, fakeRotation(false))
	expect(t, c.run(t, "", "cluster", "rotate-gossip-key"), 0, plan+
		"installed on node/n2 (2 of 2)\n"+
		"primary on node/n1 (1 of 2)\n"+
		"primary on node/n2 (2 of 2)\n"+
		"old keys removed on node/n1 (1 of 2)\n"+
		"old keys removed on node/n2 (2 of 2)\n"+
		"gossip key rotated: primary 0123abcd0123abcd on 2 members\n", "")

	c = newCluster(t, fakeRotation(true))
	expect(t, c.run(t, "", "cluster", "rotate-gossip-key"), 1, plan,
		"error: install the new gossip key on node n2: connection refused; nothing was switched\n")
	expect(t, c.run(t, "", "cluster", "rotate-gossip-key", "extra"), 1, "", "error: unknown command \"extra\" for \"ctl cluster rotate-gossip-key\"\n")
}
