package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultNodeTTL is the lifetime of a node certificate when none is given. The CertHolder
// renews it when a third of it is left (about four months before expiry).
const DefaultNodeTTL = 365 * 24 * time.Hour

// NodeParams is what a node certificate says.
type NodeParams struct {
	// Name is the node name, the certificate's CommonName. Required.
	Name string
	// DNSNames and IPs are the subject alternative names beyond the ones always present
	// (localhost, 127.0.0.1, ::1): the node's advertise address, its host name.
	DNSNames []string
	IPs      []net.IP
	// TTL is the certificate's lifetime. Default DefaultNodeTTL; never past the CA's expiry.
	TTL time.Duration
}

// IssueNode issues a node certificate signed by the CA, good for both server and client
// authentication (each member is both), with CommonName name and the given SANs plus
// localhost, 127.0.0.1 and ::1. ttl 0 means DefaultNodeTTL. It returns the certificate and a
// fresh ECDSA P-256 private key, PEM encoded.
func (ca *CA) IssueNode(name string, dnsNames []string, ips []net.IP, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(ca.now(), NodeParams{Name: name, DNSNames: dnsNames, IPs: ips, TTL: ttl})
}

func (p NodeParams) validate() error {
	if p.Name == "" {
		return errors.New("node certificate: name: required")
	}
	if len(p.Name) > 253 || strings.ContainsFunc(p.Name, notPrintableASCII) {
		return fmt.Errorf("node certificate: name %q: want at most 253 printable ASCII characters", p.Name)
	}
	for i, n := range p.DNSNames {
		if n == "" || len(n) > 253 || strings.ContainsFunc(n, func(r rune) bool { return notPrintableASCII(r) || r == ' ' }) {
			return fmt.Errorf("node certificate: dnsNames[%d] %q: not a host name", i, n)
		}
	}
	for i, ip := range p.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return fmt.Errorf("node certificate: ips[%d]: not an IP address", i)
		}
	}
	if p.TTL < 0 {
		return fmt.Errorf("node certificate: ttl %s: must not be negative", p.TTL)
	}
	return nil
}

func notPrintableASCII(r rune) bool { return r < 0x20 || r > 0x7e }

// sans is the full SAN list: the given names plus the loopback ones, without duplicates.
func (p NodeParams) sans() ([]string, []net.IP) {
	dns := []string{"localhost"}
	for _, n := range p.DNSNames {
		if !slices.Contains(dns, strings.ToLower(n)) {
			dns = append(dns, strings.ToLower(n))
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, ip := range p.IPs {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return dns, ips
}

// covers reports whether cert says what p asks for: the name and every SAN.
func (p NodeParams) covers(cert *x509.Certificate) bool {
	if cert.Subject.CommonName != p.Name {
		return false
	}
	dns, ips := p.sans()
	for _, n := range dns {
		if !slices.ContainsFunc(cert.DNSNames, func(c string) bool { return strings.EqualFold(c, n) }) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func (ca *CA) issue(now time.Time, p NodeParams) (certPEM, keyPEM []byte, err error) {
	if err := p.validate(); err != nil {
		return nil, nil, err
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultNodeTTL
	}
	notAfter := now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, nil, fmt.Errorf("node certificate %q: the CA expired on %s", p.Name, ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate %q: generate key: %w", p.Name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	dns, ips := p.sans()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: p.Name, Organization: []string{"constellation"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate %q: %w", p.Name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate %q: encode key: %w", p.Name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WriteNodeFiles writes dir/node.key then dir/node.crt, both 0600, each atomically.
func WriteNodeFiles(dir string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, NodeKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, NodeCertFile), certPEM, 0o600); err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	return nil
}

// ReadNodeFiles reads dir/node.crt and dir/node.key, refusing a key file others may read. A
// missing file is an error wrapping fs.ErrNotExist.
func ReadNodeFiles(dir string) (certPEM, keyPEM []byte, err error) {
	certPEM, err = readPublicFile(filepath.Join(dir, NodeCertFile))
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	keyPEM, err = readPrivateFile(filepath.Join(dir, NodeKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// keyPair parses a node certificate and key into a tls.Certificate with Leaf set.
func keyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil { // set by X509KeyPair since Go 1.23; parse if a GODEBUG turned it off
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &c, nil
}
