// Command invalid is a stack the API server refuses (its route names a port the Service lacks),
// for specs_test.go's TestInvalidStackFails. It prints its JSON itself: spec.Print would refuse
// it before the server sees it.
package main

import (
	"encoding/json"
	"os"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	s := spec.Service("broken", "nginx:1.27-alpine", spec.Port("http", 80))
	s.Spec.Routes = &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "broken.example.com", Port: "admin"}}}
	if err := json.NewEncoder(os.Stdout).Encode([]v1.Object{s}); err != nil {
		os.Exit(1)
	}
}
