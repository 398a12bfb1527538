package job

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/constellation-sh/constellation/pkg/store"
)

// unusedDocker satisfies Docker for constructors that never call the engine.
type unusedDocker struct{ Docker }

// TestConstructorsReturnRegistrationErrors: a metric already registered is the constructor's
// error, not a panic (both constructors used MustRegister).
func TestConstructorsReturnRegistrationErrors(t *testing.T) {
	st := store.NewMemory()
	reg := prometheus.NewRegistry()
	for i := range 2 {
		_, err := NewController(ControllerConfig{Store: st, Registerer: reg, Logger: quiet()})
		if (err != nil) != (i == 1) {
			t.Fatalf("controller %d: err = %v", i, err)
		}
		_, err = NewRunner(RunnerConfig{Node: "n1", Store: st, Docker: unusedDocker{}, Registerer: reg, Logger: quiet()})
		if (err != nil) != (i == 1) {
			t.Fatalf("runner %d: err = %v", i, err)
		}
	}
}
