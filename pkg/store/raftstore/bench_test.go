package raftstore

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

var benchMembers = 3

// BenchmarkWrites measures updates through the leader of an in-process 3-member cluster
// with the production timing defaults, at 1 and 64 concurrent writers. hack/bench-store
// compares the same against etcd.
//
// tls=on is what the agent runs: mutual TLS 1.3 between members (ECDSA P-256 certificates);
// tls=off is the same cluster in plain TCP, the baseline of the ratio in docs/performance.md.
func BenchmarkWrites(b *testing.B) {
	for _, tlsOn := range []bool{false, true} {
		for _, clients := range []int{1, 64} {
			name := fmt.Sprintf("tls=%s/clients=%d", map[bool]string{false: "off", true: "on"}[tlsOn], clients)
			b.Run(name, func(b *testing.B) { benchWrites(b, clients, tlsOn) })
		}
	}
}

func benchWrites(b *testing.B, clients int, tlsOn bool) {
	var certs [3]string
	if tlsOn {
		dir := b.TempDir()
		ca, caKey := writeCert(b, dir, "ca", true, nil, nil)
		writeCert(b, dir, "node", false, ca, caKey)
		certs = [3]string{filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")}
	}
	c := newCluster(b, benchMembers, func(cfg *Config) {
		cfg.TickInterval, cfg.ElectionTicks = 100*time.Millisecond, 10
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = certs[0], certs[1], certs[2]
	})
	s := c.store(c.leader())
	for i := range 100 {
		if _, err := s.Create(tctx(b, 10*time.Second), storetest.Service(fmt.Sprintf("k%d", i), nil)); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				obj := storetest.Service(fmt.Sprintf("k%d", i%100), map[string]string{"i": fmt.Sprint(i)})
				t0 := time.Now()
				if _, err := s.Update(tctx(b, 10*time.Second), obj); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	var m dto.Metric
	_ = s.met.walSyncSeconds.Write(&m)
	if h := m.GetHistogram(); h.GetSampleCount() > 0 {
		b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1e6, "leader-fsync-µs")
		b.ReportMetric(float64(b.N)/float64(h.GetSampleCount()), "writes/commit")
	}
	// The leader's bbolt commits of applied state run in its raft loop: no Ready meanwhile.
	m.Reset()
	_ = s.met.commitSeconds.Write(&m)
	if h := m.GetHistogram(); h.GetSampleCount() > 0 {
		b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1e6, "leader-bolt-commit-µs")
		b.ReportMetric(float64(h.GetSampleCount()), "leader-bolt-commits")
	}
}
