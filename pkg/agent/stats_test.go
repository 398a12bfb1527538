package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// TestStatsOfAWholeAgent: the agent serves GET /node/{node}/stats (ctl top) for the replicas its
// own node reconciler started on the real engine: a Service applied through the API, whose
// replica holds 24 MiB resident, is sampled with its Service name, index and a memory figure
// that counts those 24 MiB.
func TestStatsOfAWholeAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; run without -short")
	}
	buildTestImages(t)
	node := fmt.Sprintf("st%d", time.Now().UnixNano()%1_000_000)
	stop, a := startAgentStoppable(t, node, func(cfg *config.Config) { cfg.Docker.Disabled = false })
	c, err := client.New(client.Config{Server: a.APIAddress()})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop() // first, or its reconciler would start the replica again
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cs, _ := dc.List(ctx, map[string]string{docker.LabelNode: node})
		for _, ct := range cs {
			_ = dc.Remove(ctx, ct.ID)
		}
		dc.Close()
	})
	ctx := context.Background()
	svc := spec.Service(node+"-burn", "constellation-test/tool:top")
	svc.Spec.Command = []string{"/app"}
	svc.Spec.Args = []string{"burn", "24"}
	svc.Default()
	if _, err := c.Put(ctx, svc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var st *nodeapi.NodeStats
	eventuallyWithin(t, 60*time.Second, "the replica sampled with its 24 MiB", func() bool {
		st, err = c.Stats(ctx, node, "")
		if err != nil {
			t.Fatalf("stats of %s at %s: %v", node, a.APIAddress(), err)
		}
		return len(st.Replicas) == 1 && st.Replicas[0].MemoryBytes >= 22<<20
	})
	r := st.Replicas[0]
	if r.Service != svc.Metadata.Name || r.Index != 0 || r.Error != "" || st.Node != node || st.CPUs < 1 {
		t.Fatalf("stats %+v", st)
	}
	o, err := c.Get(ctx, v1.KindService, svc.Metadata.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range o.(*v1.Service).Status.ReplicaStatuses {
		if rs.ContainerID != "" && rs.ContainerID[:12] != r.Container {
			t.Errorf("sampled container %s, the Service's replica runs %.12s", r.Container, rs.ContainerID)
		}
	}
}
