package traefik

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports guards doc.go's promise: of this module, only api/v1, pkg/nodehealth,
// pkg/observed and pkg/store.
func TestImports(t *testing.T) {
	const mod = "github.com/constellation-sh/constellation/"
	allowed := map[string]bool{mod + "api/v1": true, mod + "pkg/nodehealth": true, mod + "pkg/observed": true, mod + "pkg/store": true}
	files, _ := filepath.Glob("*.go")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		n++
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, mod) && !allowed[p] {
				t.Errorf("%s imports %s", f, p)
			}
			if strings.HasPrefix(p, "github.com/traefik/traefik") {
				t.Errorf("%s imports Traefik itself (%s): mirror its JSON in config.go instead", f, p)
			}
		}
	}
	if n < 5 {
		t.Fatalf("checked %d files", n)
	}
}
