package ctl_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/seal"
)

// `ctl secret rotate-key` against an API server over a sealing store, with the agent's
// rotation handler: progress and summary printed, every Secret under the new key, values kept.
func TestSecretRotateKey(t *testing.T) {
	var sealed *seal.Store
	c := newCluster(t, func(cfg *apiserver.Config) {
		s, err := seal.New(cfg.Store, "ctl-test-cluster-secret", slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		sealed = s
		cfg.Store = s
		cfg.Handlers["POST "+seal.RotatePath] = s.RotateHandler()
	})
	ctx := context.Background()
	for i := range 3 {
		in := fmt.Sprintf(`{"apiVersion":"constellation/v1","kind":"Secret","metadata":{"name":"s%d"},"spec":{"data":{"k":"value-%d"}}}`, i, i)
		expect(t, c.run(t, in, "apply", "-f", "-"), 0, fmt.Sprintf("secret/s%d created\n", i), "")
	}
	// Applying the same values again is not a change, through the sealing store too.
	same := `{"apiVersion":"constellation/v1","kind":"Secret","metadata":{"name":"s0"},"spec":{"data":{"k":"value-0"}}}`
	expect(t, c.run(t, same, "apply", "-f", "-"), 0, "secret/s0 unchanged\n", "")
	expect(t, c.run(t, same, "apply", "-f", "-", "--dry-run"), 0, "secret/s0 unchanged (server dry run)\n", "")
	kro, err := c.st.Get(ctx, v1.KindKeyring, v1.KeyringName)
	if err != nil {
		t.Fatal(err)
	}
	old := kro.(*v1.Keyring).Spec.ActiveKeyID

	r := c.run(t, "", "secret", "rotate-key")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	kro, err = c.st.Get(ctx, v1.KindKeyring, v1.KeyringName)
	if err != nil {
		t.Fatal(err)
	}
	kr := kro.(*v1.Keyring)
	active := kr.Spec.ActiveKeyID
	want := "re-sealed 1 of 3 Secrets\nre-sealed 2 of 3 Secrets\nre-sealed 3 of 3 Secrets\n" +
		"data key rotated: 3 Secrets sealed with " + active + " (3 re-sealed now); dropped " + old + "\n"
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	if active == old || len(kr.Spec.Keys) != 1 {
		t.Fatalf("keyring: active %s (was %s), %d keys", active, old, len(kr.Spec.Keys))
	}
	for i := range 3 {
		name := fmt.Sprintf("s%d", i)
		raw, err := c.st.Get(ctx, v1.KindSecret, name)
		if err != nil {
			t.Fatal(err)
		}
		if sd := raw.(*v1.Secret).Spec.Sealed; sd == nil || sd.KeyID != active {
			t.Fatalf("%s not sealed under %s", name, active)
		}
		got, err := sealed.Get(ctx, v1.KindSecret, name)
		if err != nil {
			t.Fatal(err)
		}
		if got.(*v1.Secret).Spec.Data["k"] != fmt.Sprintf("value-%d", i) {
			t.Fatalf("%s: value changed by the rotation", name)
		}
	}
	// The keyring is not part of the API.
	r = c.run(t, "", "get", "keyring", "data")
	if r.code == 0 || !strings.Contains(r.stderr, "unknown kind") {
		t.Fatalf("ctl get keyring: exit %d, stderr %q", r.code, r.stderr)
	}
}
