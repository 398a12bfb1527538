package pki

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssueNode(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	certPEM, keyPEM, err := ca.IssueNode("node-1", []string{"node-1.example.net", "LOCALHOST"}, []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := mustParseCert(t, certPEM)
	if c.Subject.CommonName != "node-1" {
		t.Errorf("CommonName %q, want node-1", c.Subject.CommonName)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v, want server and client auth", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("node certificate is a CA")
	}
	if want := []string{"localhost", "node-1.example.net"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNSNames %v, want %v (deduplicated, localhost always)", c.DNSNames, want)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1", "10.0.0.5"}; !slices.Equal(ips, want) {
		t.Errorf("IPAddresses %v, want %v", ips, want)
	}
	if want := clk.Now().Add(DefaultNodeTTL); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter %s, want %s (365 days by default)", c.NotAfter, want)
	}
	if name, err := ca.VerifyPeer(c, clk.Now()); err != nil || name != "node-1" {
		t.Errorf("VerifyPeer = %q, %v; want node-1", name, err)
	}
	if _, err := keyPair(certPEM, keyPEM); err != nil {
		t.Errorf("certificate and key do not pair: %v", err)
	}
	if err := ca.verifyServer(c, nil, clk.Now()); err != nil {
		t.Errorf("not a server certificate: %v", err)
	}
}

func TestIssueNodeTTLAndErrors(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	t.Run("ttl", func(t *testing.T) {
		certPEM, _, err := ca.IssueNode("n", nil, nil, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustParseCert(t, certPEM).NotAfter, clk.Now().Add(48*time.Hour); !got.Equal(want) {
			t.Errorf("NotAfter %s, want %s", got, want)
		}
	})
	t.Run("never outlives the CA", func(t *testing.T) {
		late := ca.WithClock(func() time.Time { return clk.Now().Add(CALifetime - 24*time.Hour) })
		certPEM, _, err := late.IssueNode("n", nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustParseCert(t, certPEM).NotAfter; !got.Equal(ca.Certificate().NotAfter) {
			t.Errorf("NotAfter %s, want the CA's %s", got, ca.Certificate().NotAfter)
		}
	})
	tests := []struct {
		name     string
		node     string
		dnsNames []string
		ips      []net.IP
		ttl      time.Duration
		at       time.Duration
		want     string
	}{
		{name: "no name", want: "name: required"},
		{name: "control character in name", node: "a\nb", want: "printable ASCII"},
		{name: "empty DNS name", node: "n", dnsNames: []string{""}, want: "dnsNames[0]"},
		{name: "DNS name with a space", node: "n", dnsNames: []string{"ok", "a b"}, want: "dnsNames[1]"},
		{name: "bad IP", node: "n", ips: []net.IP{{1, 2, 3}}, want: "ips[0]"},
		{name: "negative ttl", node: "n", ttl: -time.Second, want: "must not be negative"},
		{name: "CA expired", node: "n", at: CALifetime + time.Hour, want: "the CA expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ca.WithClock(func() time.Time { return clk.Now().Add(tt.at) })
			_, _, err := c.IssueNode(tt.node, tt.dnsNames, tt.ips, tt.ttl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestVerifyPeer(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	other := mustCA(t, clk.Now)
	good, _, _ := ca.IssueNode("n1", nil, nil, 24*time.Hour)
	foreign, _, _ := other.IssueNode("n1", nil, nil, 24*time.Hour)
	tests := []struct {
		name string
		cert []byte
		at   time.Duration
		want string
	}{
		{name: "member", cert: good},
		{name: "another CA", cert: foreign, want: "unknown authority"},
		{name: "expired", cert: good, at: 25 * time.Hour, want: "expired"},
		{name: "not yet valid", cert: good, at: -time.Hour, want: "not yet valid"},
		{name: "the CA itself", cert: ca.CertPEM(), want: "verify peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, err := ca.VerifyPeer(mustParseCert(t, tt.cert), clk.Now().Add(tt.at))
			if tt.want == "" {
				if err != nil || name != "n1" {
					t.Fatalf("VerifyPeer = %q, %v; want n1", name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := ca.VerifyPeer(nil, clk.Now()); err == nil {
		t.Error("VerifyPeer(nil) succeeded")
	}
}

func TestNodeFiles(t *testing.T) {
	ca := mustCA(t, nil)
	certPEM, keyPEM, err := ca.IssueNode("n1", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	if _, _, err := ReadNodeFiles(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadNodeFiles of an empty dir: %v, want fs.ErrNotExist", err)
	}
	if err := WriteNodeFiles(dir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{NodeCertFile, NodeKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
	c, k, err := ReadNodeFiles(dir)
	if err != nil || string(c) != string(certPEM) || string(k) != string(keyPEM) {
		t.Fatalf("ReadNodeFiles: %v, or not what was written", err)
	}
	must(t, os.Chmod(filepath.Join(dir, NodeKeyFile), 0o644))
	if _, _, err := ReadNodeFiles(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("ReadNodeFiles with a world-readable key: %v, want a chmod 600 error", err)
	}
}
