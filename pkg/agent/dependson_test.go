package agent

import (
	"context"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// TestAdmissionRefusesDependsOnCycles: a Service closing a dependsOn cycle with what is stored
// is refused with 422 at spec.dependsOn, naming the path, and nothing is stored.
func TestAdmissionRefusesDependsOnCycles(t *testing.T) {
	_, c := startAgent(t, "n1", nil)
	dep := func(name string, on ...string) *v1.Service {
		return hostService(name, func(sp *v1.ServiceSpec) {
			for _, d := range on {
				sp.DependsOn = append(sp.DependsOn, v1.Dependency{Service: d})
			}
		})
	}
	for _, s := range []*v1.Service{dep("web", "api"), dep("api", "db")} {
		if ce := putErr(t, c, s); ce != nil {
			t.Fatalf("%s: %v", s.Metadata.Name, ce)
		}
	}
	ce := putErr(t, c, dep("db", "web"))
	if ce == nil || ce.StatusCode != 422 || ce.Field != "spec.dependsOn" || ce.Message != "services/db: spec.dependsOn: cycle db -> web -> api -> db" {
		t.Fatalf("cycle admitted or badly reported: %+v", ce)
	}
	if _, err := c.Get(context.Background(), v1.KindService, "db"); !client.IsNotFound(err) {
		t.Fatalf("db stored after the refusal: %v", err)
	}
}
