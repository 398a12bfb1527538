package pki

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// peerName returns the node name of a request whose client certificate the TLS layer verified
// against the CA; ok is false for a request without one.
func peerName(r *http.Request) (name string, ok bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "", false
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName, true
}

// serveTLS runs an HTTPS server with cfg on loopback that answers the caller's peerName.
func serveTLS(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, ok := peerName(r)
			fmt.Fprintf(w, "%s %v", name, ok)
		})
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// get does one request on a fresh connection (a fresh handshake) and returns the body and the
// serial of the certificate the server presented.
func get(addr string, cfg *tls.Config) (string, *big.Int, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	return string(b), resp.TLS.PeerCertificates[0].SerialNumber, nil
}

func TestTLSConfigs(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	other := mustCA(t, clk.Now)
	server := mustHolder(t, ca, "server", "", clk.Now)
	member := mustHolder(t, ca, "member", "", clk.Now)
	stranger := mustHolder(t, other, "stranger", "", clk.Now)
	strangeServer := mustHolder(t, other, "server", "", clk.Now)

	peerAddr := serveTLS(t, server.PeerServerTLS(), nil)
	apiAddr := serveTLS(t, server.APIServerTLS(), nil)
	strangeAddr := serveTLS(t, strangeServer.PeerServerTLS(), nil)
	noCert := TrustTLS(ca.Certificate(), "")
	noCert.Time = clk.Now
	// A client that trusts our CA but presents a certificate from another one: what the
	// servers must refuse is the client's certificate, not the other way round.
	foreignCert := TrustTLS(ca.Certificate(), "")
	foreignCert.GetClientCertificate = stranger.GetClientCertificate
	foreignCert.Time = clk.Now

	tests := []struct {
		name   string
		addr   string
		client *tls.Config
		body   string // "" = the request must fail
		errHas string
	}{
		{"peer server: member", peerAddr, member.ClientTLS(""), "member true", ""},
		{"peer server: member, name checked", peerAddr, member.ClientTLS("localhost"), "member true", ""},
		{"peer server: certificate from another CA", peerAddr, foreignCert, "", "remote error: tls: unknown certificate authority"},
		{"peer server: no certificate", peerAddr, noCert, "", "certificate required"},
		{"API server: no certificate", apiAddr, noCert, " false", ""},
		{"API server: member", apiAddr, member.ClientTLS(""), "member true", ""},
		{"API server: certificate from another CA", apiAddr, foreignCert, "", "remote error: tls: unknown certificate authority"},
		{"client: server from another CA", strangeAddr, member.ClientTLS(""), "", "unknown authority"},
		{"client: server from another CA, name checked", strangeAddr, member.ClientTLS("localhost"), "", "unknown authority"},
		{"client: name not in the server certificate", peerAddr, member.ClientTLS("elsewhere.example"), "", "elsewhere.example"},
		{"ctl: server from another CA", strangeAddr, noCert, "", "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _, err := get(tt.addr, tt.client)
			if tt.body != "" {
				if err != nil || body != tt.body {
					t.Fatalf("got %q, %v; want %q", body, err, tt.body)
				}
				return
			}
			if err == nil {
				t.Fatalf("request succeeded with %q, want a refused handshake", body)
			}
			t.Logf("refused: %v", err)
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err %v, want one containing %q", err, tt.errHas)
			}
		})
	}

	t.Run("peer servers need TLS 1.3", func(t *testing.T) {
		c := member.ClientTLS("")
		c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if _, _, err := get(peerAddr, c); err == nil {
			t.Fatal("a TLS 1.2 handshake with the peer server succeeded")
		}
	})
}

// TestTLSExpiry: the configs check validity with the holder's clock, so a certificate that
// expired by that clock is refused on both sides.
func TestTLSExpiry(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	mk := func(name string, ttl time.Duration) *CertHolder {
		h, err := NewCertHolder(ca, NodeParams{Name: name, TTL: ttl}, "", clk.Now, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	shortServer, longServer := mk("short", time.Hour), mk("long", 48*time.Hour)
	shortClient, longClient := mk("short-client", time.Hour), mk("long-client", 48*time.Hour)
	shortAddr := serveTLS(t, shortServer.PeerServerTLS(), nil)
	longAddr := serveTLS(t, longServer.PeerServerTLS(), nil)

	if _, _, err := get(shortAddr, longClient.ClientTLS("")); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clk.Add(2 * time.Hour) // the short certificates have expired; nobody renewed them
	if _, _, err := get(shortAddr, longClient.ClientTLS("")); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired server certificate: %v, want an expiry error", err)
	}
	if _, _, err := get(longAddr, shortClient.ClientTLS("")); err == nil {
		t.Error("expired client certificate accepted by the peer server")
	}
	if _, _, err := get(longAddr, longClient.ClientTLS("")); err != nil {
		t.Errorf("valid on both sides: %v", err)
	}
}
