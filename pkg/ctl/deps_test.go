package ctl

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps ctl a thin client: inside the module it links only api/v1 and
// pkg/client (not the store, the API server or the controllers, and not client-go).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/ctl").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/constellation-sh/constellation/api/v1":      true,
		"github.com/constellation-sh/constellation/pkg/client":  true,
		"github.com/constellation-sh/constellation/pkg/pki":     true,
		"github.com/constellation-sh/constellation/pkg/nodeapi": true, // the per-node API's wire format
		"github.com/constellation-sh/constellation/pkg/ctl":     true,
		"github.com/constellation-sh/constellation/pkg/doctor":  true, // ctl doctor's checks (stdlib and nodeapi only)
		"github.com/constellation-sh/constellation/pkg/compose": true, // ctl convert (compose-go stays out of every other package)
		"github.com/constellation-sh/constellation/cmd/ctl":     true,

		// snapshot save and inspect check files with the snapshot decoder (it and atomicfile import the standard library only)
		"github.com/constellation-sh/constellation/pkg/snapshot":        true,
		"github.com/constellation-sh/constellation/internal/atomicfile": true,
	}
	allowed["github.com/constellation-sh/constellation/pkg/spechash"] = true // rollout history: Secret-only revisions
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		if strings.HasPrefix(p, "github.com/constellation-sh/constellation/") && !allowed[p] {
			t.Errorf("cmd/ctl links %s", p)
		}
		if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "go.etcd.io/") || strings.HasPrefix(p, "github.com/moby/") {
			t.Errorf("cmd/ctl links %s", p)
		}
	}
	if n < 10 {
		t.Fatalf("go list -deps listed %d packages: the check is not looking", n)
	}
}
