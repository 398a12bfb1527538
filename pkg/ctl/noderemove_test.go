package ctl_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/constellation-sh/constellation/pkg/apiserver"
)

// fakeRemoval answers DELETE /cluster/members/{name} as the agent does, by name: the agent's own
// handler is tested with whole agents in pkg/agent; this checks what ctl sends and prints.
func fakeRemoval(cfg *apiserver.Config) {
	cfg.Handlers["DELETE /cluster/members/{name}"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, force := r.PathValue("name"), r.URL.Query().Get("force") == "true"
		fail := func(code int, msg string) {
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
		out := map[string]any{"name": name}
		switch name {
		case "dead":
			out["removedMember"], out["deletedNode"] = true, true
		case "member-only":
			out["removedMember"] = true
		case "node-only":
			out["deletedNode"] = true
		case "live":
			if !force {
				fail(http.StatusConflict, "nodes/live: removal refused: the node is alive (gossip sees it); stop it first, or use --force")
				return
			}
			out["removedMember"], out["deletedNode"] = true, true
		case "quorum":
			fail(http.StatusConflict, "nodes/quorum: removal refused: it would leave 2 voters with 1 alive, below their quorum of 2")
			return
		default:
			fail(http.StatusNotFound, "nodes/"+name+": neither a raft member nor a Node object")
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

func TestNodeRemove(t *testing.T) {
	c := newCluster(t, fakeRemoval)
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"node", "remove", "dead"}, 0, "node/dead removed: raft member and Node object\n", ""},
		{[]string{"node", "remove", "member-only"}, 0, "node/member-only removed: raft member (it had no Node object)\n", ""},
		{[]string{"node", "remove", "node-only"}, 0, "node/node-only removed: Node object (it was not a raft member)\n", ""},
		{[]string{"node", "remove", "live"}, 1, "", "error: nodes/live: removal refused: the node is alive (gossip sees it); stop it first, or use --force\n"},
		{[]string{"node", "remove", "live", "--force"}, 0, "node/live removed: raft member and Node object\n", ""},
		{[]string{"node", "remove", "quorum", "--force"}, 1, "", "error: nodes/quorum: removal refused: it would leave 2 voters with 1 alive, below their quorum of 2\n"},
		{[]string{"node", "remove", "n9"}, 1, "", "error: nodes/n9: neither a raft member nor a Node object\n"},
		{[]string{"node", "remove"}, 1, "", "error: accepts 1 arg(s), received 0\n"},
	}
	for _, tt := range tests {
		expect(t, c.run(t, "", tt.args...), tt.code, tt.stdout, tt.stderr)
	}
}
