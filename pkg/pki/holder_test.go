package pki

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRenewIfDue(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	dir := t.TempDir()
	const ttl = 30 * 24 * time.Hour
	params := NodeParams{Name: "n1", TTL: ttl}
	h, err := NewCertHolder(ca, params, dir, clk.Now, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	first := h.Certificate().Leaf
	onDisk := func() string {
		certPEM, _, err := ReadNodeFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		return mustParseCert(t, certPEM).SerialNumber.String()
	}
	if onDisk() != first.SerialNumber.String() {
		t.Fatal("the issued certificate is not the one on disk")
	}

	// Lifetime is ttl plus the clock-skew margin; renewal starts when a third of it is left.
	lifetime := first.NotAfter.Sub(first.NotBefore)
	renewAt := first.NotAfter.Add(-lifetime / 3)
	clk.Add(renewAt.Sub(clk.Now()) - time.Second)
	if renewed, err := h.RenewIfDue(clk.Now()); err != nil || renewed {
		t.Fatalf("a second before a third is left: renewed=%v err=%v, want no renewal", renewed, err)
	}
	if why := h.Due(clk.Now()); why != "" {
		t.Fatalf("Due = %q before the renewal time", why)
	}
	clk.Add(2 * time.Second)
	if why := h.Due(clk.Now()); !strings.Contains(why, "third") {
		t.Fatalf("Due = %q after the renewal time", why)
	}
	renewed, err := h.RenewIfDue(clk.Now())
	if err != nil || !renewed {
		t.Fatalf("a second after: renewed=%v err=%v, want a renewal", renewed, err)
	}
	second := h.Certificate().Leaf
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("renewal kept the old certificate")
	}
	if want := clk.Now().Add(ttl); !second.NotAfter.Equal(want) {
		t.Errorf("renewed NotAfter %s, want %s", second.NotAfter, want)
	}
	if onDisk() != second.SerialNumber.String() {
		t.Error("the renewed certificate was not saved")
	}
	if renewed, _ := h.RenewIfDue(clk.Now()); renewed {
		t.Error("renewed twice in a row")
	}

	// A restart on the same dir keeps the saved certificate.
	again, err := NewCertHolder(ca, params, dir, clk.Now, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if again.Certificate().Leaf.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Error("a restart reissued a certificate that was fine")
	}
}

func TestNewCertHolderReissues(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	other := mustCA(t, clk.Now)
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		params  NodeParams
		reissue bool
	}{
		{name: "nothing changed", prepare: func(*testing.T, string) {}, params: NodeParams{Name: "n1"}},
		{name: "an address was added", prepare: func(*testing.T, string) {}, params: NodeParams{Name: "n1", IPs: []net.IP{net.ParseIP("192.0.2.7")}}, reissue: true},
		{name: "renamed", prepare: func(*testing.T, string) {}, params: NodeParams{Name: "n2"}, reissue: true},
		{
			name: "certificate from another CA",
			prepare: func(t *testing.T, dir string) {
				c, k, err := other.IssueNode("n1", nil, nil, 0)
				must(t, err)
				must(t, WriteNodeFiles(dir, c, k))
			},
			params: NodeParams{Name: "n1"}, reissue: true,
		},
		{
			name: "key does not match (a crash between the two writes)",
			prepare: func(t *testing.T, dir string) {
				_, k, err := ca.IssueNode("n1", nil, nil, 0)
				must(t, err)
				must(t, os.WriteFile(filepath.Join(dir, NodeKeyFile), k, 0o600))
			},
			params: NodeParams{Name: "n1"}, reissue: true,
		},
		{
			name:    "expired",
			prepare: func(*testing.T, string) { clk.Add(DefaultNodeTTL + time.Hour) },
			params:  NodeParams{Name: "n1"}, reissue: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := mustHolder(t, ca, "n1", dir, clk.Now)
			before := h.Certificate().Leaf.SerialNumber
			tt.prepare(t, dir)
			h2, err := NewCertHolder(ca, tt.params, dir, clk.Now, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			leaf := h2.Certificate().Leaf
			if got := leaf.SerialNumber.Cmp(before) != 0; got != tt.reissue {
				t.Fatalf("reissued=%v, want %v", got, tt.reissue)
			}
			if !tt.params.covers(leaf) {
				t.Error("the certificate does not say what the params ask for")
			}
			if _, err := h2.VerifyPeer(leaf); err != nil {
				t.Errorf("holder's certificate: %v", err)
			}
		})
	}
	if _, err := NewCertHolder(nil, NodeParams{Name: "n"}, "", nil, nil); err == nil {
		t.Error("a holder without a CA")
	}
	if _, err := NewCertHolder(ca, NodeParams{}, "", nil, nil); err == nil {
		t.Error("a holder without a name")
	}
}

// TestRenewalReachesLiveServer: a server built from the holder's configs presents the renewed
// certificate on the next handshake, without a restart.
func TestRenewalReachesLiveServer(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	server := mustHolder(t, ca, "server", "", clk.Now)
	client := mustHolder(t, ca, "client", "", clk.Now)
	addr := serveTLS(t, server.PeerServerTLS(), nil)

	_, before, err := get(addr, client.ClientTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	if before.Cmp(server.Certificate().Leaf.SerialNumber) != 0 {
		t.Fatal("the server presented something other than the holder's certificate")
	}
	clk.Add(DefaultNodeTTL * 2 / 3)
	for _, h := range []*CertHolder{server, client} {
		if renewed, err := h.RenewIfDue(clk.Now()); err != nil || !renewed {
			t.Fatalf("renewed=%v err=%v", renewed, err)
		}
	}
	body, after, err := get(addr, client.ClientTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	if after.Cmp(before) == 0 || after.Cmp(server.Certificate().Leaf.SerialNumber) != 0 {
		t.Fatalf("after renewal the server presented serial %s, want the new %s", after, server.Certificate().Leaf.SerialNumber)
	}
	if body != "client true" {
		t.Fatalf("body %q: the renewed client certificate was not accepted", body)
	}
}

func TestRun(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	h := mustHolder(t, ca, "n1", t.TempDir(), clk.Now)
	before := h.Certificate().Leaf.SerialNumber
	clk.Add(DefaultNodeTTL) // expired: Run must replace it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for h.Certificate().Leaf.SerialNumber.Cmp(before) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not renew an expired certificate")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if why := h.Due(clk.Now()); why != "" {
		t.Errorf("after Run: Due = %q", why)
	}
}

// TestConcurrentRenewal: handshakes read the certificate while renewals replace it, and two
// renewals at once issue one certificate (run with -race).
func TestConcurrentRenewal(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	h := mustHolder(t, ca, "n1", t.TempDir(), clk.Now)
	clk.Add(DefaultNodeTTL)
	var wg sync.WaitGroup
	var renewals atomic.Int32
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if renewed, err := h.RenewIfDue(clk.Now()); err != nil {
				t.Error(err)
			} else if renewed {
				renewals.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			if c, _ := h.GetCertificate(nil); c == nil || c.Leaf == nil {
				t.Error("GetCertificate returned no certificate")
			}
		}()
	}
	wg.Wait()
	if n := renewals.Load(); n != 1 {
		t.Fatalf("%d renewals for one due certificate, want 1", n)
	}
}
