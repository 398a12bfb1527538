package pki

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func testBundle(t testing.TB) *JoinBundle {
	ca, err := NewCA(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &JoinBundle{
		Version:       JoinBundleVersion,
		ClusterSecret: "c0ffee" + strings.Repeat("42", 20),
		CACertPEM:     string(ca.CertPEM()),
		CAKeyPEM:      string(ca.KeyPEM()),
		GossipKey:     base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		DataKey:       "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
	}
}

func TestJoinBundleRoundTrip(t *testing.T) {
	b := testBundle(t)
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJoinBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *b {
		t.Fatalf("round trip changed the bundle:\n%+v\n%+v", got, b)
	}
	ca, err := got.CA()
	if err != nil {
		t.Fatal(err)
	}
	// The joiner's CA can issue member certificates the sender's CA accepts.
	sender, _ := b.CA()
	certPEM, _, err := ca.IssueNode("joiner", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.VerifyPeer(mustParseCert(t, certPEM), ca.now()); err != nil {
		t.Fatalf("a certificate the joiner issued: %v", err)
	}
}

func TestJoinBundleErrors(t *testing.T) {
	other, _ := NewCA(nil)
	tests := []struct {
		name   string
		mutate func(b *JoinBundle)
		raw    func(enc []byte) []byte
		want   string
	}{
		{name: "version 2", mutate: func(b *JoinBundle) { b.Version = 2 }, want: "version"},
		{name: "no cluster secret", mutate: func(b *JoinBundle) { b.ClusterSecret = "" }, want: "clusterSecret: required"},
		{name: "cluster secret with a newline", mutate: func(b *JoinBundle) { b.ClusterSecret = "a\nb" }, want: "clusterSecret"},
		{name: "huge cluster secret", mutate: func(b *JoinBundle) { b.ClusterSecret = strings.Repeat("a", 1025) }, want: "clusterSecret"},
		{name: "no CA certificate", mutate: func(b *JoinBundle) { b.CACertPEM = "" }, want: "caCertPEM: required"},
		{name: "no CA key", mutate: func(b *JoinBundle) { b.CAKeyPEM = "" }, want: "caKeyPEM: required"},
		{name: "CA key of another CA", mutate: func(b *JoinBundle) { b.CAKeyPEM = string(other.KeyPEM()) }, want: "does not match"},
		{name: "CA certificate not PEM", mutate: func(b *JoinBundle) { b.CACertPEM = "hello" }, want: "CA certificate: no PEM block"},
		{name: "no gossip key", mutate: func(b *JoinBundle) { b.GossipKey = "" }, want: "gossipKey: required"},
		{name: "gossip key not base64", mutate: func(b *JoinBundle) { b.GossipKey = "!!!!" }, want: "gossipKey: not standard base64"},
		{name: "gossip key of 8 bytes", mutate: func(b *JoinBundle) { b.GossipKey = base64.StdEncoding.EncodeToString(make([]byte, 8)) }, want: "got 8"},
		{name: "data key with a control character", mutate: func(b *JoinBundle) { b.DataKey = "a\x00b" }, want: "dataKey"},
		{name: "unknown field", raw: func(enc []byte) []byte { return append(enc[:len(enc)-1], []byte(`,"peers":[]}`)...) }, want: `unknown field "peers"`},
		{name: "trailing data", raw: func(enc []byte) []byte { return append(enc, []byte(`{}`)...) }, want: "data after"},
		{name: "not an object", raw: func([]byte) []byte { return []byte(`[]`) }, want: "cannot unmarshal"},
		{name: "oversized", raw: func(enc []byte) []byte { return append(enc, bytes.Repeat([]byte(" "), MaxJoinBundleSize)...) }, want: "bytes, more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBundle(t)
			secrets := []string{b.ClusterSecret, b.GossipKey, b.DataKey, b.CAKeyPEM}
			var in []byte
			if tt.mutate != nil {
				tt.mutate(b)
				if _, err := b.Encode(); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Encode: %v, want an error containing %q", err, tt.want)
				}
				in, _ = json.Marshal(b)
			} else {
				enc, err := b.Encode()
				if err != nil {
					t.Fatal(err)
				}
				in = tt.raw(enc)
			}
			_, err := DecodeJoinBundle(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode: %v, want an error containing %q", err, tt.want)
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestJoinBundlePrintsNoSecret(t *testing.T) {
	b := testBundle(t)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("join", "bundle", b, "value", *b)
	outs := []string{fmt.Sprint(b), fmt.Sprintf("%+v", *b), fmt.Sprintf("%#v", b), fmt.Sprintf("%v", []*JoinBundle{b}), logged.String()}
	for _, out := range outs {
		for _, secret := range []string{b.ClusterSecret, b.GossipKey, b.DataKey, "PRIVATE KEY"} {
			if strings.Contains(out, secret) {
				t.Errorf("%q shows a secret", out)
			}
		}
	}
	ca, _ := b.CA()
	if !strings.Contains(outs[0], ca.Fingerprint()) {
		t.Errorf("%q: want the CA fingerprint", outs[0])
	}
}

func FuzzDecodeJoinBundle(f *testing.F) {
	b := testBundle(f)
	enc, err := b.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"clusterSecret":"x","caCertPEM":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----","caKeyPEM":"","gossipKey":"AAAA"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeJoinBundle(data)
		if err != nil {
			return
		}
		// A bundle that decodes is valid, yields a CA, and survives a round trip unchanged.
		if _, err := got.CA(); err != nil {
			t.Fatalf("decoded bundle has no usable CA: %v", err)
		}
		again, err := got.Encode()
		if err != nil {
			t.Fatalf("decoded bundle does not encode: %v", err)
		}
		back, err := DecodeJoinBundle(again)
		if err != nil || *back != *got {
			t.Fatalf("round trip: %v", err)
		}
	})
}
