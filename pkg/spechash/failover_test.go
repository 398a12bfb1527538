package spechash

import (
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// appProtocol and failover are the mesh's business: changing them restarts no container.
func TestMeshOnlyFieldsKeepTheHash(t *testing.T) {
	base := v1.ServiceSpec{Image: "echo:1", Ports: []v1.ServicePort{{Name: "http", ContainerPort: 8080}}}
	h := Of(&base)
	http := base
	http.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080, AppProtocol: v1.AppProtocolHTTP}}
	http.Failover = &v1.Failover{Order: v1.OrderLeastLatency, ReplayUnsafe: true}
	if got := Of(&http); got != h {
		t.Errorf("hash %s with appProtocol http and a failover block, want %s (no rollout)", got, h)
	}
	if http.Ports[0].AppProtocol != v1.AppProtocolHTTP {
		t.Error("Of modified its argument")
	}
}
