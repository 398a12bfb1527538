package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
)

// forms are the encodings a value could sit in on disk: raw, in JSON, and base64 of it.
func forms(value string) [][]byte {
	js, _ := json.Marshal(value)
	out := [][]byte{[]byte(value), js[1 : len(js)-1]}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, []byte(enc.EncodeToString([]byte(value))))
	}
	return out
}

// filesHolding walks dir and names every file whose raw bytes hold any form of value.
func filesHolding(t *testing.T, dir, value string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forms(value) {
			if bytes.Contains(b, f) {
				hits = append(hits, fmt.Sprintf("%s (%q form)", p, f))
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// THE raw-bytes test: a real raft store in a temp dir, a Secret written through the wrapper,
// a snapshot forced; no file under the data dir holds the value in any form. A control Secret
// written past the wrapper shows the search finds what is there.
func TestNoPlaintextUnderDataDir(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	cfg := raftstore.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.RaftAddress = "n0", dir, "127.0.0.1:0"
	cfg.ClusterToken = clusterSecret
	cfg.TickInterval = 20 * time.Millisecond
	cfg.SnapshotEntries = 8 // a snapshot within the writes below
	cfg.CatchUpEntries = 2  // and a compacted log
	reg := prometheus.NewRegistry()
	rs, err := raftstore.Open(cfg, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSealed(t, rs)
	closed := false
	defer func() {
		if !closed {
			_ = s.Close()
		}
	}()

	const value = "Xy7-very-distinctive-secret-value-Q42"
	const updated = "Zq9-second-distinctive-secret-value-W17"
	const control = "Ct1-control-value-written-unsealed-P03"
	if _, err := s.Create(ctx, secret("db", map[string]string{"password": value, "url": "postgres://u:" + value + "@db/x"})); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Create(ctx, secret("control", map[string]string{"k": control})); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * int(cfg.SnapshotEntries) {
		if _, err := s.Create(ctx, secret(fmt.Sprintf("filler%d", i), map[string]string{"k": "filler"})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, secret("db", map[string]string{"password": updated})); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "password", updated)
	if n := snapshotsTaken(t, reg); n < 1 {
		t.Fatalf("no snapshot was taken (%v)", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	if hits := filesHolding(t, dir, control); len(hits) == 0 {
		t.Fatal("the control value, written unsealed, is not found: the search is broken")
	}
	for _, v := range []string{value, updated} {
		if hits := filesHolding(t, dir, v); len(hits) > 0 {
			t.Fatalf("a Secret value is on disk in plaintext: %s", strings.Join(hits, ", "))
		}
	}

	// Reopened from disk (snapshot plus log), the values still read.
	rs2, err := raftstore.Open(cfg, quiet(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s2 := newSealed(t, rs2)
	defer s2.Close()
	got, err = s2.Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "password", updated)
}

func snapshotsTaken(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "constellation_store_snapshots_taken_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
