package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCAProof(t *testing.T) {
	ca := mustCA(t, nil)
	other := mustCA(t, nil)
	nonce, err := NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	otherNonce, _ := NewNonce()
	tokens := [][]byte{[]byte("admin-token"), nil, []byte("read-token")}
	resp, err := NewCAProof(ca.Certificate().Raw, nonce, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Proofs) != 2 {
		t.Fatalf("%d proofs for two tokens (and an empty one)", len(resp.Proofs))
	}
	forOtherCA, _ := NewCAProof(other.Certificate().Raw, nonce, tokens)
	swapped := *resp
	swapped.CACert = forOtherCA.CACert // another CA with this CA's proofs

	tests := []struct {
		name  string
		resp  *CAProofResponse
		nonce []byte
		token string
		want  string
	}{
		{name: "admin token", resp: resp, nonce: nonce, token: "admin-token"},
		{name: "read token", resp: resp, nonce: nonce, token: "read-token"},
		{name: "wrong token", resp: resp, nonce: nonce, token: "guess", want: "no proof matches"},
		{name: "a token's prefix", resp: resp, nonce: nonce, token: "admin", want: "no proof matches"},
		{name: "another nonce (a replayed answer)", resp: resp, nonce: otherNonce, token: "admin-token", want: "no proof matches"},
		{name: "another CA under these proofs", resp: &swapped, nonce: nonce, token: "admin-token", want: "no proof matches"},
		{name: "no token", resp: resp, nonce: nonce, token: "", want: "no token"},
		{name: "short nonce", resp: resp, nonce: nonce[:16], token: "admin-token", want: "nonce"},
		{name: "no response", nonce: nonce, token: "admin-token", want: "no response"},
		{name: "no proofs", resp: &CAProofResponse{CACert: resp.CACert}, nonce: nonce, token: "admin-token", want: "no proof matches"},
		{name: "not a CA", resp: &CAProofResponse{CACert: "junk", Proofs: resp.Proofs}, nonce: nonce, token: "admin-token", want: "caCert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyCAProof(tt.resp, tt.nonce, []byte(tt.token))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if Fingerprint(got) != ca.Fingerprint() {
					t.Errorf("CA %s, want %s", Fingerprint(got), ca.Fingerprint())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}

	t.Run("NewCAProof errors", func(t *testing.T) {
		if _, err := NewCAProof(ca.Certificate().Raw, nonce[:31], tokens); err == nil {
			t.Error("a 31-byte nonce was accepted")
		}
		if _, err := NewCAProof([]byte("junk"), nonce, tokens); err == nil {
			t.Error("a CA that does not parse was accepted")
		}
		many := make([][]byte, MaxCAProofs+1)
		for i := range many {
			many[i] = []byte{byte(i), 1}
		}
		if _, err := NewCAProof(ca.Certificate().Raw, nonce, many); err == nil {
			t.Error("more proofs than a client accepts")
		}
	})
}

func TestParseNonce(t *testing.T) {
	n, _ := NewNonce()
	if got, err := ParseNonce(hex.EncodeToString(n)); err != nil || !bytes.Equal(got, n) {
		t.Fatalf("round trip: %x, %v", got, err)
	}
	for _, s := range []string{"", "00", strings.Repeat("0", 62), strings.Repeat("0", 66), strings.Repeat("zz", 32)} {
		if _, err := ParseNonce(s); err == nil {
			t.Errorf("ParseNonce(%q) accepted", s)
		}
	}
}

func TestDecodeCAProofResponse(t *testing.T) {
	ca := mustCA(t, nil)
	nonce, _ := NewNonce()
	resp, _ := NewCAProof(ca.Certificate().Raw, nonce, [][]byte{[]byte("t")})
	good, _ := json.Marshal(resp)
	certJSON, _ := json.Marshal(resp.CACert)
	withCert := func(rest string) []byte { return []byte(`{"caCert":` + string(certJSON) + rest + `}`) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"valid", good, ""},
		{"no proofs", withCert(`,"proofs":[]`), ""},
		{"unknown field", withCert(`,"proofs":[],"extra":1`), "unknown field"},
		{"trailing data", append(good, []byte(` {}`)...), "data after"},
		{"not JSON", []byte("<html>"), "invalid character"},
		{"no caCert", []byte(`{"proofs":[]}`), "caCert: required"},
		{"caCert not PEM", []byte(`{"caCert":"x","proofs":[]}`), "caCert"},
		{"short proof", withCert(`,"proofs":["abcd"]`), "proofs[0]"},
		{"proof not hex", withCert(`,"proofs":["` + strings.Repeat("g", 64) + `"]`), "proofs[0]"},
		{"too many proofs", withCert(`,"proofs":[` + strings.Repeat(`"`+strings.Repeat("a", 64)+`",`, MaxCAProofs) + `"` + strings.Repeat("a", 64) + `"]`), "entries"},
		{"oversized", append(good, bytes.Repeat([]byte(" "), MaxCAProofResponseSize)...), "bytes, more than"},
		{"huge caCert", []byte(`{"caCert":"` + strings.Repeat("A", MaxCAProofCertSize+1) + `"}`), "caCert:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCAProofResponse(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.CACert != resp.CACert {
					t.Error("caCert changed in decoding")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// proofServer is an API server with the CA proof mounted and the given API tokens.
func proofServer(t *testing.T, h *CertHolder, tokens ...string) string {
	t.Helper()
	mux := http.NewServeMux()
	proof := CAProofHandler(h.CA().Certificate().Raw, func() [][]byte {
		var out [][]byte
		for _, tok := range tokens {
			out = append(out, []byte(tok))
		}
		return out
	})
	mux.HandleFunc(CAProofPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || strings.Contains(r.URL.RawQuery, "token") {
			t.Errorf("FetchCA sent credentials over the unverified connection: %s", r.URL)
		}
		proof.ServeHTTP(w, r)
	})
	return "https://" + serveTLS(t, h.APIServerTLS(), mux)
}

func TestFetchCA(t *testing.T) {
	ca := mustCA(t, nil)
	evil := mustCA(t, nil)
	server := mustHolder(t, ca, "server", "", nil)
	good := proofServer(t, server, "admin-token", "read-token")

	// A man in the middle with its own CA: either it answers with its own CA (and cannot
	// prove a token), or it relays the real server's answer under its own certificate.
	mitmHolder := mustHolder(t, evil, "server", "", nil)
	forging := proofServer(t, mitmHolder, "what-it-guesses")
	relayMux := http.NewServeMux()
	relayMux.HandleFunc(CAProofPath, func(w http.ResponseWriter, r *http.Request) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
		resp, err := c.Get(good + r.URL.RequestURI())
		if err != nil {
			t.Errorf("relay: %v", err)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	})
	relaying := "https://" + serveTLS(t, mitmHolder.APIServerTLS(), relayMux)

	tests := []struct {
		name   string
		url    string
		token  string
		pinned string
		want   string
	}{
		{name: "right token", url: good, token: "admin-token"},
		{name: "another known token", url: good, token: "read-token"},
		{name: "host:port without scheme", url: strings.TrimPrefix(good, "https://"), token: "admin-token"},
		{name: "trailing slash", url: good + "/", token: "admin-token"},
		{name: "wrong token", url: good, token: "guess", want: "no proof matches"},
		{name: "pinned fingerprint, wrong token", url: good, token: "guess", pinned: ca.Fingerprint()},
		{name: "pinned fingerprint, no token", url: good, pinned: strings.ToUpper(strings.TrimPrefix(ca.Fingerprint(), "sha256:"))},
		{name: "pinned fingerprint of another CA, right token", url: good, token: "admin-token", pinned: evil.Fingerprint(), want: "not the pinned"},
		{name: "malformed pin", url: good, token: "admin-token", pinned: "sha256:abc", want: "pinned fingerprint"},
		{name: "neither token nor pin", url: good, want: "needs a token or a pinned"},
		{name: "MITM with its own CA", url: forging, token: "admin-token", want: "no proof matches"},
		{name: "MITM with its own CA, pinned", url: forging, pinned: ca.Fingerprint(), want: "not the pinned"},
		{name: "MITM relaying the real answer", url: relaying, token: "admin-token", want: "unknown authority"},
		{name: "MITM relaying the real answer, pinned", url: relaying, pinned: ca.Fingerprint(), want: "unknown authority"},
		{name: "plain http", url: "http://" + strings.TrimPrefix(good, "https://"), token: "admin-token", want: "want https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, got, err := FetchCA(context.Background(), tt.url, tt.token, tt.pinned)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if Fingerprint(got) != ca.Fingerprint() {
					t.Fatalf("CA %s, want %s", Fingerprint(got), ca.Fingerprint())
				}
				// The pool is what the token-carrying connection trusts: it must verify the
				// real server and nobody else.
				if _, _, err := get(strings.TrimPrefix(good, "https://"), &tls.Config{RootCAs: pool, ServerName: "localhost"}); err != nil {
					t.Errorf("the returned pool does not verify the server: %v", err)
				}
				if _, _, err := get(strings.TrimPrefix(forging, "https://"), &tls.Config{RootCAs: pool, ServerName: "localhost"}); err == nil {
					t.Error("the returned pool verifies a server of another CA")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}

	t.Run("error status", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"nope"}`, http.StatusNotFound)
		}))
		defer srv.Close()
		if _, _, err := FetchCA(context.Background(), srv.URL, "admin-token", ""); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err %v, want the 404", err)
		}
	})
	t.Run("oversized answer", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(bytes.Repeat([]byte(" "), MaxCAProofResponseSize+10))
		}))
		defer srv.Close()
		if _, _, err := FetchCA(context.Background(), srv.URL, "admin-token", ""); err == nil || !strings.Contains(err.Error(), "allowed") {
			t.Fatalf("err %v, want a size error", err)
		}
	})
	t.Run("handler refuses a bad nonce", func(t *testing.T) {
		h := CAProofHandler(ca.Certificate().Raw, func() [][]byte { return nil })
		for _, target := range []string{CAProofPath, CAProofPath + "?nonce=abc"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"nonce"`) {
				t.Errorf("%s: %d %s, want 400 naming the nonce", target, rec.Code, rec.Body)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, CAProofPath, nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d, want 405", rec.Code)
		}
	})
}

func FuzzDecodeCAProofResponse(f *testing.F) {
	ca, err := NewCA(nil)
	if err != nil {
		f.Fatal(err)
	}
	nonce, _ := NewNonce()
	resp, _ := NewCAProof(ca.Certificate().Raw, nonce, [][]byte{[]byte("a"), []byte("b")})
	good, _ := json.Marshal(resp)
	f.Add(good)
	f.Add([]byte(`{"caCert":"","proofs":[]}`))
	f.Add([]byte(`{"caCert":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n","proofs":["00"]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeCAProofResponse(b)
		if err != nil {
			return
		}
		// What decodes is within the limits and decodes the same again.
		if len(r.Proofs) > MaxCAProofs || len(r.CACert) > MaxCAProofCertSize {
			t.Fatalf("limits not enforced: %d proofs, caCert %d bytes", len(r.Proofs), len(r.CACert))
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeCAProofResponse(again); err != nil {
			t.Fatalf("re-encoded answer does not decode: %v", err)
		}
		_, _ = VerifyCAProof(r, nonce, []byte("a"))
	})
}
