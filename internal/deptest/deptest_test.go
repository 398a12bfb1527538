// Package deptest guards the direction of dependencies between Constellation's packages:
// api/v1 imports nothing of ours, pkg/* never imports controllers/* (pkg/agent, which
// assembles a node, excepted), and only cmd/ and tests import pkg/agent.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/constellation-sh/constellation/"

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			checked++
			switch {
			case strings.HasPrefix(pkg, "api/"):
				t.Errorf("%s imports %s: api imports nothing of ours", pkg, dep)
			case strings.HasPrefix(pkg, "pkg/") && !strings.HasPrefix(pkg, "pkg/agent") && strings.HasPrefix(dep, "controllers/"):
				t.Errorf("%s imports %s: pkg/* never imports controllers", pkg, dep)
			case strings.HasPrefix(dep, "pkg/agent") && !strings.HasPrefix(pkg, "cmd/") && !strings.HasPrefix(pkg, "test/") && !strings.HasPrefix(pkg, "pkg/agent"):
				t.Errorf("%s imports %s: only cmd/ and tests assemble agents", pkg, dep)
			case strings.HasPrefix(dep, "cmd/"):
				t.Errorf("%s imports %s: nothing imports a command", pkg, dep)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no internal imports found: the check is not looking at the module")
	}
}
