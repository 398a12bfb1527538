package scheduler

import (
	"context"
	"log/slog"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/seal"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Re-sealing every Secret under a new data key (ctl secret rotate-key) bumps their generation
// but changes no value a Service reads: it must roll nothing. A new value still does, and a
// change of a key the Service does not read does not.
func TestDataKeyRotationRollsNothing(t *testing.T) {
	ctx := context.Background()
	st, err := seal.New(store.NewMemory(), "peer-secret-for-the-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "p1", "other": "x"}))
	svc := withSecretEnv(service("web", 2), "db", "password", "")
	svc.Default()
	rd := storeReader{st: st, key: []byte("digest key")}
	rev := func() string {
		t.Helper()
		h, err := revisionHash(ctx, rd, svc)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before, gen := rev(), getSecretGen(t, st)
	if _, err := st.Rotate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if g := getSecretGen(t, st); g == gen {
		t.Fatalf("the rotation did not re-seal the Secret (generation %d): the test shows nothing", g)
	}
	if got := rev(); got != before {
		t.Fatalf("data key rotation changed the revision: %q -> %q", before, got)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "p1", "other": "y"}))
	if got := rev(); got != before {
		t.Fatalf("a key the Service does not read changed the revision: %q -> %q", before, got)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "p2", "other": "y"}))
	if got := rev(); got == before {
		t.Fatal("a new value of the key read did not change the revision")
	}
}

func getSecretGen(t *testing.T, st store.Store) int64 {
	t.Helper()
	o, err := st.Get(context.Background(), v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	return o.GetMetadata().Generation
}
