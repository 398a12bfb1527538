package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// TestNodeAPIForwardedBetweenAgents runs two raft agents: n1 without Docker, n2 on the real
// dockerd. A Service lands on n2; its logs and an exec in it are asked of n1, which finds n2's
// API in the cluster and forwards with the caller's token. A node that is stopped is named.
func TestNodeAPIForwardedBetweenAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents and containers; run without -short")
	}
	buildTestImages(t)
	p := fmt.Sprintf("ag%d-", time.Now().UnixNano()%1_000_000)
	n1, n2 := p+"n1", p+"n2"
	raft := raftAgents(t)
	first := freeAddr(t)
	_, a1 := startAgentStoppable(t, n1, func(c *config.Config) {
		raft("")(c)
		c.API.Address = first
	})
	stop2, a2 := startAgentStoppable(t, n2, func(c *config.Config) {
		raft(first)(c)
		c.API.Address = freeAddr(t)
		c.Docker.Disabled = false
		c.Mesh.Disabled = true
	})
	dockerFor(t, n2) // removes its containers at the end
	c1, err := client.New(client.Config{Server: a1.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc := spec.Service(p+"web", "constellation-test/tool:1")
	svc.Spec.Command = []string{"/app"}
	svc.Spec.Args = []string{"serve"}
	svc.Spec.Env = []v1.EnvVar{{Name: "INTERVAL", Value: "100ms"}}
	svc.Default()
	eventually(t, "the Service written", func() bool {
		_, err := c1.Put(ctx, svc, client.PutOptions{})
		return err == nil
	})
	var rs v1.ReplicaStatus
	eventuallyWithin(t, 60*time.Second, "the replica running on n2", func() bool {
		o, err := c1.Get(ctx, v1.KindService, svc.Metadata.Name)
		if err != nil {
			return false
		}
		for _, r := range o.(*v1.Service).Status.ReplicaStatuses {
			if r.Node == n2 && r.State == v1.ReplicaRunning && r.ContainerID != "" {
				rs = r
				return true
			}
		}
		return false
	})
	var lines []string
	eventually(t, "logs of the replica through n1", func() bool {
		lines = nil
		err := c1.Logs(ctx, n2, client.LogOptions{Service: svc.Metadata.Name, Index: rs.Index, Tail: -1}, func(e nodeapi.LogEntry) error {
			lines = append(lines, e.Stream+":"+e.Line)
			return nil
		})
		return err == nil && strings.Contains(strings.Join(lines, ","), "stderr:err 2")
	})
	if !strings.Contains(strings.Join(lines, ","), "stdout:out 1") {
		t.Fatalf("lines: %v", lines)
	}
	conn, err := c1.Exec(ctx, n2, client.ExecOptions{Service: svc.Metadata.Name, Index: rs.Index, Cmd: []string{"/app", "say", "via-n1", "5"}})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := nodeapi.RunSession(ctx, conn, nil, &out, &errb, nil)
	conn.Close()
	if err != nil || code != 5 || out.String() != "via-n1\n" {
		t.Fatalf("exec through n1: code %d err %v stdout %q stderr %q", code, err, out.String(), errb.String())
	}
	// n1 itself runs no Docker: said so, not forwarded anywhere.
	err = c1.Logs(ctx, n1, client.LogOptions{Service: svc.Metadata.Name, Index: 0, Tail: -1}, func(nodeapi.LogEntry) error { return nil })
	if client.StatusCode(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "node "+n1+" runs no Docker engine") {
		t.Fatalf("logs on n1: %v", err)
	}
	// n2 stops: named, never skipped.
	stop2()
	eventually(t, "n2 reported unreachable", func() bool {
		err := c1.Logs(ctx, n2, client.LogOptions{Service: svc.Metadata.Name, Index: rs.Index, Tail: -1}, func(nodeapi.LogEntry) error { return nil })
		return client.StatusCode(err) == http.StatusBadGateway && strings.Contains(err.Error(), "node "+n2)
	})
	_ = a2
}
