package seal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
)

// BenchmarkSecretWrites measures what sealing costs a Secret write and read on a one-member
// raft store (fsynced bbolt, the production timing): plain is the store as it is, sealed is
// the same store under seal.Store (AES-256-GCM, the keyring re-read after each write). Both in
// one run, so the ratio holds on a loaded machine: docs/performance.md, "Secrets at rest".
func BenchmarkSecretWrites(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "sealed"}[sealed]
		b.Run(name+"/update", func(b *testing.B) { benchSecrets(b, sealed, false) })
		b.Run(name+"/get", func(b *testing.B) { benchSecrets(b, sealed, true) })
	}
}

func benchSecrets(b *testing.B, sealed, reads bool) {
	ctx := context.Background()
	cfg := raftstore.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.RaftAddress = "n0", b.TempDir(), "127.0.0.1:0"
	cfg.ClusterToken = clusterSecret
	rs, err := raftstore.Open(cfg, quiet(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	var st store.Store = rs
	if sealed {
		s, err := New(rs, clusterSecret, quiet())
		if err != nil {
			b.Fatal(err)
		}
		st = s
	}
	defer st.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := st.Revision(ctx); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 16 {
		if _, err := st.Create(ctx, secret(fmt.Sprintf("s%d", i), map[string]string{"password": "initial"})); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("s%d", i%16)
		if reads {
			if _, err := st.Get(ctx, v1.KindSecret, name); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if _, err := st.Update(ctx, secret(name, map[string]string{"password": fmt.Sprintf("value-%d", i)})); err != nil {
			b.Fatal(err)
		}
	}
}
