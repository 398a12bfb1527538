package status

import (
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// An image-less upstream Service runs no replica: it is Ready with reason Upstreams (the mesh
// serves it), not "scaled to zero" or waiting for replicas.
func TestFoldUpstreamService(t *testing.T) {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = "llm"
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 80}}
	s.Spec.Upstreams = []v1.Upstream{{URL: "https://a.example.com"}, {URL: "https://b.example.com"}}
	got := FoldService(s, nil, "h", t0)
	if c := cond(got, v1.ServiceReady); c != "True/Upstreams" {
		t.Errorf("Ready = %s, want True/Upstreams", c)
	}
	if c := cond(got, v1.ServiceDegraded); c != "False/AllReplicasReady" {
		t.Errorf("Degraded = %s, want False", c)
	}
	if s.Spec.DesiredReplicas() != 0 {
		t.Errorf("desired replicas %d, want 0 (even with spec.replicas unset)", s.Spec.DesiredReplicas())
	}
}
