package v1

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// kindOf reads the first top-level kind, or says it cannot tell; decode must then agree with
// a full decode of the type meta on every input, wherever the field is and however often.
func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		in, first, want string
	}{
		{`{"apiVersion":"constellation.sh/v1","kind":"Secret","spec":{}}`, "Secret", "Secret"},
		{`{"kind":"Service"}`, "Service", "Service"},
		{` { "metadata" : {"name":"x","labels":{"kind":"Node"}}, "kind" : "Lease" } `, "Lease", "Lease"},
		{`{"spec":{"kind":"Node"},"kind":"DNSRecord"}`, "DNSRecord", "DNSRecord"},
		{`{"kind":"Sec\u0072et"}`, "Secret", "Secret"},
		{`{"kind":"Lease","kind":"Secret"}`, "Lease", "Secret"}, // encoding/json keeps the last duplicate
		{`{"kind":null}`, "", ""},
		{`{"metadata":{}}`, "", ""},
	} {
		var head TypeMeta
		if err := json.Unmarshal([]byte(tc.in), &head); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if head.Kind != tc.want {
			t.Fatalf("test case %s: encoding/json says %q, the table %q", tc.in, head.Kind, tc.want)
		}
		if got := kindOf([]byte(tc.in)); got != tc.first {
			t.Errorf("kindOf(%s) = %q, want %q", tc.in, got, tc.first)
		}
		o, err := DecodeLenient([]byte(tc.in))
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("DecodeLenient(%s) accepted an object without a kind", tc.in)
		case tc.want != "" && err != nil:
			t.Errorf("DecodeLenient(%s): %v", tc.in, err)
		case tc.want != "" && o.GetTypeMeta().Kind != tc.want:
			t.Errorf("DecodeLenient(%s) is a %s, want %s", tc.in, o.GetTypeMeta().Kind, tc.want)
		}
	}
	for _, bad := range []string{`{"kind":1}`, `{"kind":"Secret","kind":1}`, `[]`, `{"kind":"Secret"`, `{"kind":"Secret"} {}`, `{"kind":"Secret",}`, ``} {
		if _, err := DecodeLenient([]byte(bad)); err == nil {
			t.Errorf("DecodeLenient(%q) accepted it", bad)
		}
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted it", bad)
		}
	}
}

func TestDecodeLenientKeepsErrors(t *testing.T) {
	_, err := DecodeLenient([]byte(`{"apiVersion":"constellation.sh/v1","kind":"Nope"}`))
	if !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("err = %v, want ErrUnknownKind", err)
	}
	_, err = DecodeLenient([]byte(`{"apiVersion":"constellation.sh/v1","kind":"Secret","spec":{"data":{"a":1}}}`))
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "spec.data" {
		t.Fatalf("err = %#v, want a DecodeError at spec.data", err)
	}
	o, err := DecodeLenient([]byte(`{"apiVersion":"constellation.sh/v1","kind":"Secret","future":{"x":[1,2]},"spec":{"data":{"a":"b"}}}`))
	if err != nil || o.(*Secret).Spec.Data["a"] != "b" {
		t.Fatalf("lenient decode of an unknown field: %v %v", o, err)
	}
}

// BenchmarkDecodeLenientLargeSecret is the storage read path for a 1 MiB Secret (a List of
// many such objects is bound by it).
func BenchmarkDecodeLenientLargeSecret(b *testing.B) {
	s := &Secret{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindSecret}}
	s.Metadata.Name = "big"
	s.Spec.Data = map[string]string{"blob": strings.Repeat("x", 1<<20)}
	data, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeLenient(data); err != nil {
			b.Fatal(err)
		}
	}
}
