package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCACreatesThenLoads(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "data")
	ca, created, err := LoadOrCreateCA(dir, clk.Now)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v, want a new CA", created, err)
	}
	c := ca.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate: IsCA=%v certSign=%v", c.IsCA, c.KeyUsage&x509.KeyUsageCertSign != 0)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key: %T, want ECDSA P-256", c.PublicKey)
	}
	if want := clk.Now().Add(CALifetime); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter %s, want %s", c.NotAfter, want)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	for name, want := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{CACertFile, CAKeyFile}) {
		t.Errorf("dir holds %v, want only ca.crt and ca.key (no temporary files)", names)
	}

	clk.Add(24 * time.Hour)
	again, created, err := LoadOrCreateCA(dir, clk.Now)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v, want the existing CA", created, err)
	}
	if again.Fingerprint() != ca.Fingerprint() || string(again.KeyPEM()) != string(ca.KeyPEM()) {
		t.Errorf("reloaded CA %s differs from %s", again.Fingerprint(), ca.Fingerprint())
	}
}

func TestLoadOrCreateCAErrors(t *testing.T) {
	clk := newClock()
	other := mustCA(t, clk.Now)
	nodeCert, _, err := other.IssueNode("n1", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		now     time.Duration // clock offset at load
		want    string        // substring of the error; "" = success
		created bool
	}{
		{
			name: "key readable by others",
			prepare: func(t *testing.T, dir string) {
				must(t, os.Chmod(filepath.Join(dir, CAKeyFile), 0o644))
			},
			want: "chmod 600",
		},
		{
			name: "key readable by the group",
			prepare: func(t *testing.T, dir string) {
				must(t, os.Chmod(filepath.Join(dir, CAKeyFile), 0o640))
			},
			want: "ca.key: mode 0640",
		},
		{
			name:    "certificate without key",
			prepare: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, CAKeyFile))) },
			want:    "ca.key is missing",
		},
		{
			name:    "key without certificate is a creation that never finished",
			prepare: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, CACertFile))) },
			created: true,
		},
		{
			name: "key of another CA",
			prepare: func(t *testing.T, dir string) {
				must(t, os.WriteFile(filepath.Join(dir, CAKeyFile), other.KeyPEM(), 0o600))
			},
			want: "does not match the CA certificate",
		},
		{
			name: "certificate is not a CA",
			prepare: func(t *testing.T, dir string) {
				must(t, os.WriteFile(filepath.Join(dir, CACertFile), nodeCert, 0o644))
			},
			want: "not a CA",
		},
		{
			name: "garbage certificate",
			prepare: func(t *testing.T, dir string) {
				must(t, os.WriteFile(filepath.Join(dir, CACertFile), []byte("hello"), 0o644))
			},
			want: "no PEM block",
		},
		{
			name:    "expired",
			prepare: func(t *testing.T, dir string) {},
			now:     CALifetime + time.Hour,
			want:    "expired on",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, _, err := LoadOrCreateCA(dir, clk.Now)
			if err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, dir)
			at := func() time.Time { return clk.Now().Add(tt.now) }
			ca, created, err := LoadOrCreateCA(dir, at)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err %v, want success", err)
				}
				if created != tt.created {
					t.Errorf("created %v, want %v", created, tt.created)
				}
				if tt.created && ca.Fingerprint() == first.Fingerprint() {
					t.Error("a new CA was reported but the old one came back")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
	t.Run("error names the file", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := LoadOrCreateCA(dir, clk.Now); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, CAKeyFile)
		must(t, os.Chmod(path, 0o604))
		_, _, err := LoadOrCreateCA(dir, clk.Now)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("err %v, want it to name %s and chmod 600", err, path)
		}
	})
}

func TestLoadCA(t *testing.T) {
	clk := newClock()
	ca := mustCA(t, clk.Now)
	other := mustCA(t, clk.Now)
	nodeCert, nodeKey, err := ca.IssueNode("n1", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := parseECKeyPEM(ca.KeyPEM())
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	sec1PEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	tests := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"pkcs8", ca.CertPEM(), ca.KeyPEM(), ""},
		{"sec1 key", ca.CertPEM(), sec1PEM, ""},
		{"key of another CA", ca.CertPEM(), other.KeyPEM(), "does not match"},
		{"node certificate", nodeCert, nodeKey, "not a CA"},
		{"two certificates", append(ca.CertPEM(), other.CertPEM()...), ca.KeyPEM(), "data after the certificate"},
		{"key where the certificate goes", ca.KeyPEM(), ca.KeyPEM(), `"PRIVATE KEY", want CERTIFICATE`},
		{"certificate where the key goes", ca.CertPEM(), ca.CertPEM(), `want PRIVATE KEY`},
		{"empty key", ca.CertPEM(), nil, "CA key: no PEM block"},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), ca.KeyPEM(), "CA certificate:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadCA(tt.cert, tt.key)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Fingerprint() != ca.Fingerprint() {
					t.Errorf("fingerprint %s, want %s", got.Fingerprint(), ca.Fingerprint())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCAPrintsNoKey(t *testing.T) {
	ca := mustCA(t, nil)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, ca)
		if strings.Contains(out, "PRIVATE") || !strings.Contains(out, ca.Fingerprint()) {
			t.Errorf("%s of a CA prints %q: want the fingerprint and no key", format, out)
		}
	}
}

func TestFingerprint(t *testing.T) {
	ca := mustCA(t, nil)
	fp := Fingerprint(ca.Certificate())
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 || strings.ToLower(fp) != fp {
		t.Fatalf("fingerprint %q: want sha256:<64 lower-case hex digits>", fp)
	}
	bare := strings.TrimPrefix(fp, "sha256:")
	var pairs []string
	for i := 0; i < len(bare); i += 2 {
		pairs = append(pairs, strings.ToUpper(bare[i:i+2]))
	}
	tests := []struct {
		in, want string
	}{
		{fp, fp},
		{bare, fp},
		{strings.ToUpper(bare), fp},
		{"SHA256:" + strings.ToUpper(bare), fp},
		{strings.Join(pairs, ":"), fp},             // openssl x509 -fingerprint -sha256
		{"sha256:" + strings.Join(pairs, ":"), fp}, // the same, prefixed
		{"  " + fp + "\n", fp},
		{"sha256:" + bare[:62], ""},
		{bare + "00", ""},
		{"md5:" + bare, ""},
		{"sha256:" + strings.Repeat("zz", 32), ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := ParseFingerprint(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseFingerprint(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !MatchFingerprint(ca.Certificate(), tt.in) {
			t.Errorf("MatchFingerprint(%q) = false", tt.in)
		}
	}
	if MatchFingerprint(mustCA(t, nil).Certificate(), fp) {
		t.Error("another CA matches this CA's fingerprint")
	}
}

// TestStandardLibraryOnly guards the package comment: pki imports the standard library only.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := strings.Fields(string(out))
	if len(imports) == 0 {
		t.Fatal("go list printed no imports")
	}
	for _, imp := range imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("pki imports %s: the standard library only", imp)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadCADir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCADir(dir, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty dir: %v, want fs.ErrNotExist", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("LoadCADir created %d files; it must never create a CA", len(entries))
	}
	ca := mustCA(t, nil)
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCADir(dir, nil)
	if err != nil || got.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("after Save: %v, %v", got, err)
	}
	must(t, os.Remove(filepath.Join(dir, CAKeyFile)))
	if _, err := LoadCADir(dir, nil); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("certificate without key: %v, want an error that is not fs.ErrNotExist", err)
	}
}
