package node

import (
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// TestStopWaitsTheSpecsGracePeriod: a container whose spec sets stopGracePeriod is stopped with
// that timeout when it leaves the node, not with the agent's default.
func TestStopWaitsTheSpecsGracePeriod(t *testing.T) {
	f := newFixture(t)
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.StopGracePeriod = &v1.Duration{Duration: 25 * time.Second}
		sp.StopSignal = "SIGQUIT"
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("not running: %+v", f.published)
	}
	if cfg := f.dock.created[0].Config; cfg.StopTimeout == nil || *cfg.StopTimeout != 25 || cfg.StopSignal != "SIGQUIT" {
		t.Fatalf("create config stop timeout %v signal %q", cfg.StopTimeout, cfg.StopSignal)
	}
	o, err := f.st.Get(f.ctx, v1.KindService, "web")
	if err != nil {
		t.Fatal(err)
	}
	svc := o.(*v1.Service)
	svc.Status.Assignments = nil // scaled away from this node
	if _, err := f.st.UpdateStatus(f.ctx, svc); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5 && len(f.dock.stops) == 0; i++ {
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
		f.clk.Step(time.Minute) // past the drain delay
	}
	if len(f.dock.stops) == 0 || f.dock.stops[0] != 25*time.Second {
		t.Fatalf("stops %v, want one of 25s", f.dock.stops)
	}
}
