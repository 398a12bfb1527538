package pki

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The CA proof lets a client that holds a bearer token, but does not yet trust the cluster CA,
// learn the CA without a pinned fingerprint (k3s does the same with its token's CA hash):
//
//  1. the client picks a random nonce and fetches GET /cluster/ca?nonce=<hex> over TLS
//     without verifying the server;
//  2. the server answers its CA certificate and, for every API token it knows,
//     HMAC-SHA256(key=token, caProofContext || nonce || caDER);
//  3. the client accepts the CA only if one proof is the one its own token gives (or the CA
//     has the fingerprint it pinned), checks that the server's certificate chains to it, and
//     only then sends its token, over TLS verified against that CA.
//
// A man in the middle cannot forge a proof without a token, and a proof for a nonce it did not
// choose is useless to replay. What the endpoint does give anyone is, for each token, an HMAC
// they can test guesses against offline: tokens must be long random strings (the agent
// generates 24 random bytes), never passwords a person picked.

// CAProofPath is the unauthenticated route the server mounts CAProofHandler on.
const CAProofPath = "/cluster/ca"

// NonceSize is the size of the client's nonce in bytes.
const NonceSize = 32

// Limits of a CAProofResponse: an oversized or over-long answer is refused before parsing.
const (
	MaxCAProofResponseSize = 64 << 10
	MaxCAProofCertSize     = 16 << 10
	MaxCAProofs            = 64
)

const caProofContext = "constellation-ca-proof v1\x00"

// CAProofResponse is the JSON answer of GET /cluster/ca.
type CAProofResponse struct {
	// CACert is the cluster CA certificate, PEM.
	CACert string `json:"caCert"`
	// Proofs are hex HMAC-SHA256 values, one per API token the server knows, sorted (so their
	// order says nothing about which token is which).
	Proofs []string `json:"proofs"`
}

// NewNonce returns NonceSize random bytes.
func NewNonce() ([]byte, error) {
	n := make([]byte, NonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("ca proof: nonce: %w", err)
	}
	return n, nil
}

// ParseNonce decodes the nonce query parameter: exactly NonceSize bytes in hex.
func ParseNonce(s string) ([]byte, error) {
	if len(s) != 2*NonceSize {
		return nil, fmt.Errorf("ca proof: nonce: want %d hex digits, got %d characters", 2*NonceSize, len(s))
	}
	n, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("ca proof: nonce: %w", err)
	}
	return n, nil
}

func caProofMAC(token, nonce, caDER []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(caProofContext))
	m.Write(nonce)
	m.Write(caDER)
	return m.Sum(nil)
}

// NewCAProof builds the server's answer for a client's nonce: the CA certificate and one proof
// per token. Empty tokens are skipped.
func NewCAProof(caDER []byte, nonce []byte, tokens [][]byte) (*CAProofResponse, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("ca proof: nonce: want %d bytes, got %d", NonceSize, len(nonce))
	}
	if _, err := x509.ParseCertificate(caDER); err != nil {
		return nil, fmt.Errorf("ca proof: CA certificate: %w", err)
	}
	resp := &CAProofResponse{CACert: string(pemCert(caDER)), Proofs: []string{}}
	for _, t := range tokens {
		if len(t) == 0 {
			continue
		}
		resp.Proofs = append(resp.Proofs, hex.EncodeToString(caProofMAC(t, nonce, caDER)))
	}
	if len(resp.Proofs) > MaxCAProofs {
		return nil, fmt.Errorf("ca proof: %d tokens, more than the %d a client accepts", len(resp.Proofs), MaxCAProofs)
	}
	if len(resp.CACert) > MaxCAProofCertSize {
		return nil, fmt.Errorf("ca proof: CA certificate of %d bytes, more than the %d a client accepts", len(resp.CACert), MaxCAProofCertSize)
	}
	slices.Sort(resp.Proofs)
	return resp, nil
}

// VerifyCAProof returns the CA certificate of resp if one of its proofs is the one token gives
// for nonce. Every proof is compared, in constant time.
func VerifyCAProof(resp *CAProofResponse, nonce, token []byte) (*x509.Certificate, error) {
	if resp == nil {
		return nil, errors.New("ca proof: no response")
	}
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("ca proof: nonce: want %d bytes, got %d", NonceSize, len(nonce))
	}
	if len(token) == 0 {
		return nil, errors.New("ca proof: no token to check the proof with")
	}
	ca, err := parseCACertPEM([]byte(resp.CACert))
	if err != nil {
		return nil, fmt.Errorf("ca proof: caCert: %w", err)
	}
	want := caProofMAC(token, nonce, ca.Raw)
	match := 0
	for _, p := range resp.Proofs {
		got, err := hex.DecodeString(p)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		if hmac.Equal(got, want) {
			match = 1
		}
	}
	if match != 1 {
		return nil, fmt.Errorf("ca proof: no proof matches this token for %s: the server does not know the token, or is not the cluster", Fingerprint(ca))
	}
	return ca, nil
}

// DecodeCAProofResponse parses an untrusted answer strictly: at most MaxCAProofResponseSize
// bytes, no unknown fields, nothing after the object, a PEM CA certificate of at most
// MaxCAProofCertSize bytes, at most MaxCAProofs proofs of exactly 64 hex digits.
func DecodeCAProofResponse(b []byte) (*CAProofResponse, error) {
	if len(b) > MaxCAProofResponseSize {
		return nil, fmt.Errorf("ca proof: response of %d bytes, more than %d", len(b), MaxCAProofResponseSize)
	}
	var r CAProofResponse
	if err := decodeStrict(b, &r); err != nil {
		return nil, fmt.Errorf("ca proof: %w", err)
	}
	if r.CACert == "" {
		return nil, errors.New("ca proof: caCert: required")
	}
	if len(r.CACert) > MaxCAProofCertSize {
		return nil, fmt.Errorf("ca proof: caCert: %d bytes, more than %d", len(r.CACert), MaxCAProofCertSize)
	}
	if _, err := parseCACertPEM([]byte(r.CACert)); err != nil {
		return nil, fmt.Errorf("ca proof: caCert: %w", err)
	}
	if len(r.Proofs) > MaxCAProofs {
		return nil, fmt.Errorf("ca proof: proofs: %d entries, more than %d", len(r.Proofs), MaxCAProofs)
	}
	for i, p := range r.Proofs {
		if d, err := hex.DecodeString(p); err != nil || len(d) != sha256.Size {
			return nil, fmt.Errorf("ca proof: proofs[%d]: want %d hex digits", i, 2*sha256.Size)
		}
	}
	return &r, nil
}

// decodeStrict unmarshals one JSON object into v, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// CAProofHandler serves GET CAProofPath?nonce=<hex> without authentication. tokens returns the
// API tokens the server accepts now (called per request, so a rotation is seen at once).
func CAProofHandler(caDER []byte, tokens func() [][]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"error":"method not allowed"}` + "\n"))
			return
		}
		nonce, err := ParseNonce(r.URL.Query().Get("nonce"))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "field": "nonce"})
			return
		}
		resp, err := NewCAProof(caDER, nonce, tokens())
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// FetchCA learns the cluster CA from the server at baseURL (https://host:port, or host:port)
// with the CA proof, never sending the token. With pinnedFingerprint set the CA must have that
// fingerprint and the proof is not needed; otherwise a proof must match token. Either way the
// server's own certificate must chain to the CA. It returns a pool holding the CA, for the
// RootCAs of the connection that then carries the token.
func FetchCA(ctx context.Context, baseURL, token, pinnedFingerprint string) (*x509.CertPool, *x509.Certificate, error) {
	base, err := caBaseURL(baseURL)
	if err != nil {
		return nil, nil, err
	}
	var pinned string
	if pinnedFingerprint != "" {
		if pinned, err = ParseFingerprint(pinnedFingerprint); err != nil {
			return nil, nil, fmt.Errorf("fetch CA: pinned %w", err)
		}
	} else if token == "" {
		return nil, nil, errors.New("fetch CA: needs a token or a pinned CA fingerprint")
	}
	nonce, err := NewNonce()
	if err != nil {
		return nil, nil, err
	}
	u := base + CAProofPath + "?nonce=" + hex.EncodeToString(nonce)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
	}
	client := &http.Client{
		Transport: &http.Transport{
			// Unverified on purpose: the CA is what we are about to learn. Nothing secret is
			// sent on this connection, and what comes back is checked below.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec
			Proxy:             http.ProxyFromEnvironment,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, MaxCAProofResponseSize)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetch CA from %s: %s: %s", base, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	pr, err := DecodeCAProofResponse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
	}
	var ca *x509.Certificate
	if pinned != "" {
		if ca, err = parseCACertPEM([]byte(pr.CACert)); err != nil {
			return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
		}
		if !MatchFingerprint(ca, pinned) {
			return nil, nil, fmt.Errorf("fetch CA from %s: the server's CA is %s, not the pinned %s", base, Fingerprint(ca), pinned)
		}
	} else if ca, err = VerifyCAProof(pr, nonce, []byte(token)); err != nil {
		return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, nil, fmt.Errorf("fetch CA from %s: no server certificate", base)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	trust := &CA{cert: ca, pool: pool}
	if err := trust.verifyServer(resp.TLS.PeerCertificates[0], resp.TLS.PeerCertificates[1:], time.Now()); err != nil {
		return nil, nil, fmt.Errorf("fetch CA from %s: %w", base, err)
	}
	return pool, ca, nil
}

// caBaseURL normalises the server address: https is required (the proof says nothing over
// plain HTTP), a bare host:port gets https://, a trailing slash is dropped.
func caBaseURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("fetch CA: server %q: %w", s, err)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("fetch CA: server %q: want https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("fetch CA: server %q: no host", s)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
