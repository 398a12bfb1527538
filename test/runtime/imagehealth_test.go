package runtime

import (
	"fmt"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// A Service with no healthCheck of its own runs its image's Docker HEALTHCHECK (echo:hc probes
// /healthz every 500 ms, unhealthy after 2 failures). Docker only marks such a container
// unhealthy and leaves it running; the node reconciler restarts it, as it does for a spec health
// check (docs/runtime.md, docs/egress.md).
func TestImageHealthcheckHonoured(t *testing.T) {
	c := newCluster(t)
	const name = "imghc"
	c.apply(name, v1.ServiceSpec{
		Image: "constellation-test/echo:hc", Replicas: i32(1),
		Ports: []v1.ServicePort{{Name: "http", ContainerPort: 8080}},
	})
	c.waitFor("replica ready on the image's own health check", 60*time.Second, func() (bool, string) {
		rs := c.replicas(name)
		return len(rs) == 1 && rs[0].Ready() && rs[0].Health == v1.HealthHealthy, fmt.Sprintf("%+v", rs)
	})
	r := c.replicas(name)[0]
	before, err := c.dc.Inspect(c.ctx, r.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if err := post("http://" + r.Ports["8080/tcp"] + "/admin/unhealthy"); err != nil {
		t.Fatal(err)
	}
	took := c.waitFor("container unhealthy by its image's HEALTHCHECK restarted", 60*time.Second, func() (bool, string) {
		now, err := c.dc.Inspect(c.ctx, r.ContainerID)
		if err != nil {
			return false, err.Error()
		}
		rs := c.replicas(name)
		return now.StartedAt.After(before.StartedAt) && len(rs) == 1 && rs[0].Ready(), fmt.Sprintf("%+v", rs)
	})
	t.Logf("unhealthy by the image's HEALTHCHECK → restarted and ready again after %s", took.Round(time.Millisecond))
}
