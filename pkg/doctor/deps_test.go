package doctor

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package linkable by ctl: the standard library and pkg/nodeapi only.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		first, _, _ := strings.Cut(p, "/")
		if !strings.Contains(first, ".") {
			continue // standard library
		}
		if p != "github.com/constellation-sh/constellation/pkg/nodeapi" && p != "github.com/constellation-sh/constellation/pkg/doctor" {
			t.Errorf("pkg/doctor links %s", p)
		}
	}
	if n < 10 {
		t.Fatalf("go list -deps listed %d packages: the check is not looking", n)
	}
}
