package v1

import (
	"strings"
	"testing"
)

func TestInternalKind(t *testing.T) {
	info, ok := LookupKind(KindKeyring)
	if !ok || !info.Internal() {
		t.Fatal("Keyring is not an internal kind")
	}
	if s, _ := LookupKind("secrets"); s.Internal() {
		t.Fatal("Secret is internal")
	}
	if strings.Contains(KindNames(), "keyring") {
		t.Fatalf("KindNames lists the internal kind: %s", KindNames())
	}
	b := []byte(`{"apiVersion":"constellation/v1","kind":"Keyring","metadata":{"name":"data"},"spec":{"activeKeyID":"a","keys":[]}}`)
	if _, err := Decode(b); err == nil {
		t.Fatal("user input may name an internal kind")
	}
	if _, err := DecodeLenient(b); err != nil {
		t.Fatalf("the storage path cannot read the keyring: %v", err)
	}
}

func TestSecretSealedValidation(t *testing.T) {
	s := &Secret{TypeMeta: TypeMeta{APIVersion, KindSecret}}
	s.Metadata.Name = "db"
	s.Spec.Sealed = &SealedData{KeyID: "dk-1", Nonce: make([]byte, 12), Ciphertext: make([]byte, 20)}
	if errs := s.Validate(); len(errs) != 0 {
		t.Fatalf("a sealed Secret is invalid: %v", errs)
	}
	s.Spec.Data = SecretData{"k": "v"}
	if errs := s.Validate(); len(errs) != 1 || errs[0].Field != "spec.sealed" {
		t.Fatalf("data and sealed together: %v", errs)
	}
}
