package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// A restore adopts the containers that still run: a raft agent on the real dockerd runs a
// Service; a snapshot is taken; the agent stops (its container keeps running) and its data dir
// is lost; a new agent under the same node name restores the snapshot into an empty data dir.
// Its node reconciler finds the container by its labels and spec hash and keeps it: the same
// container ID runs, no second one is created.
func TestRestoreAdoptsRunningContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents and containers; run without -short")
	}
	buildTestImages(t)
	node := fmt.Sprintf("snapd%d", time.Now().UnixNano()%1_000_000)
	dc := dockerFor(t, node)
	raft := raftAgents(t)
	withDocker := func(c *config.Config) {
		raft("")(c)
		c.Docker.Disabled = false
		c.API.Address = freeAddr(t)
	}
	oldDir := filepath.Join(t.TempDir(), "old")
	stop, old := startAgentStoppable(t, node, func(c *config.Config) { withDocker(c); c.DataDir = oldDir })
	c, err := client.New(client.Config{Server: old.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc := spec.Service(node+"-web", "constellation-test/tool:1")
	svc.Spec.Command = []string{"/app"}
	svc.Spec.Args = []string{"serve"}
	svc.Default()
	eventually(t, "the Service written", func() bool {
		_, err := c.Put(ctx, svc, client.PutOptions{})
		return err == nil
	})
	running := func(c *client.Client) string {
		o, err := c.Get(ctx, v1.KindService, svc.Metadata.Name)
		if err != nil {
			return ""
		}
		for _, r := range o.(*v1.Service).Status.ReplicaStatuses {
			if r.Node == node && r.State == v1.ReplicaRunning && r.ContainerID != "" {
				return r.ContainerID
			}
		}
		return ""
	}
	var id string
	eventuallyWithin(t, 60*time.Second, "the replica running", func() bool { id = running(c); return id != "" })
	var snap bytes.Buffer
	if _, err := c.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "s.csnap")
	if err := os.WriteFile(file, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	stop()

	restart := time.Now()
	_, restored := startAgentStoppable(t, node, func(cfg *config.Config) {
		withDocker(cfg)
		cfg.Restore = file
		cfg.RestoreSecretFile = filepath.Join(oldDir, clusterSecretFile)
	})
	c2, err := client.New(client.Config{Server: restored.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// The restored cluster reports the replica running again (the status controller and the
	// reconciler are new): in the same container.
	eventuallyWithin(t, 60*time.Second, "the replica reported by the restored cluster", func() bool {
		o, err := c2.Get(ctx, v1.KindNode, node)
		return err == nil && o.(*v1.Node).Status.LastSeen != nil && running(c2) != ""
	})
	// The new agent's own reconciler has observed Docker since it started (what it publishes)
	// and found the old container, at the Service's spec hash.
	eventuallyWithin(t, 60*time.Second, "the restored agent observing the container", func() bool {
		for _, r := range restored.View().Replicas() {
			if r.Service == svc.Metadata.Name && r.Node == node && r.UpdatedAt.After(restart) && r.State == v1.ReplicaRunning {
				if r.ContainerID != id {
					t.Fatalf("the restored agent runs container %s, the old one ran %s: it was replaced", r.ContainerID, id)
				}
				return true
			}
		}
		return false
	})
	if got := running(c2); got != id {
		t.Fatalf("the restored cluster runs container %s, the old one ran %s: it was replaced", got, id)
	}
	cs, err := dc.List(ctx, map[string]string{docker.LabelNode: node})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != id || !cs[0].Running {
		t.Fatalf("containers on the node after the restore: %+v (want only %s, running)", cs, id)
	}
}
