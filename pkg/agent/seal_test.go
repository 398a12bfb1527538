package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/pkg/store"
)

// dirHolds reports whether any file under dir holds value, raw or base64.
func dirHolds(t *testing.T, dir, value string) bool {
	t.Helper()
	found := false
	forms := [][]byte{[]byte(value), []byte(base64.StdEncoding.EncodeToString([]byte(value)))}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forms {
			found = found || bytes.Contains(b, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// Two agents on raft stores: a Secret applied through the API is sealed on both members' disks,
// the joiner (which got the keyring through the store) reads it, a rotation through the agent's
// route re-seals it, and the keyring is not served by the API.
func TestAgentSecretsSealedAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two agents with raft stores; run without -short")
	}
	withRaft := raftAgents(t)
	stop1, a1 := startAgentStoppable(t, "n1", withRaft(""))
	stop2, a2 := startAgentStoppable(t, "n2", withRaft(a1.APIAddress()))
	c1, err := client.New(client.Config{Server: a1.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	const value = "Agent-distinctive-secret-Vq83-Lm27"
	const control = "registry.local/control-image-Zk41:7"
	if _, err := c1.Put(ctx, spec.Secret("db", map[string]string{"password": value}), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Put(ctx, spec.Service("control", control), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	readOn := func(a *Agent) string {
		o, err := a.Store().Get(ctx, v1.KindSecret, "db", store.Stale())
		if err != nil {
			return ""
		}
		return o.(*v1.Secret).Spec.Data["password"]
	}
	eventually(t, "the joiner reads the Secret in plaintext", func() bool { return readOn(a2) == value })

	// The keyring is internal: 404 through the API.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a1.APIAddress()+"/apis/v1/keyrings/data", nil)
	req.Header.Set("Authorization", "Bearer cluster-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /apis/v1/keyrings/data: %d, want 404", resp.StatusCode)
	}

	c2, err := client.New(client.Config{Server: a2.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var progress []client.DataKeyProgress
	res, err := c2.RotateDataKey(ctx, func(p client.DataKeyProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Resealed != 1 || res.Secrets != 1 || len(res.Dropped) != 1 || len(progress) != 1 || progress[0] != (client.DataKeyProgress{Done: 1, Total: 1}) {
		t.Fatalf("rotation %+v, progress %+v", res, progress)
	}
	eventually(t, "the Secret under the new key on n1", func() bool {
		o, err := a1.sealed.Inner().Get(ctx, v1.KindSecret, "db", store.Stale())
		return err == nil && o.(*v1.Secret).Spec.Sealed != nil && o.(*v1.Secret).Spec.Sealed.KeyID == res.ActiveKeyID
	})
	if got := readOn(a1); got != value {
		t.Fatal("n1 does not read the value after the rotation")
	}

	stop2()
	stop1()
	for _, a := range []*Agent{a1, a2} {
		if !dirHolds(t, a.cfg.DataDir, control) {
			t.Fatalf("%s: the control value is not found: the search is broken", a.cfg.Node.Name)
		}
		if dirHolds(t, a.cfg.DataDir, value) {
			t.Fatalf("%s: a file under the data dir holds the Secret's value", a.cfg.Node.Name)
		}
	}
}
