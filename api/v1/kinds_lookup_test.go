package v1

import (
	"strings"
	"testing"
)

// lookupKindLinear is LookupKind as it was before its index: the first kind, in kinds then
// internalKinds, with a name equal to name case-insensitively.
func lookupKindLinear(name string) (KindInfo, bool) {
	n := strings.ToLower(name)
	for _, k := range append(append([]KindInfo(nil), kinds...), internalKinds...) {
		if n == strings.ToLower(k.Kind) || n == k.Plural || n == k.Singular {
			return k, true
		}
		for _, s := range k.Short {
			if n == s {
				return k, true
			}
		}
	}
	return KindInfo{}, false
}

// The index answers exactly as the linear search did, for every name of every kind in three
// spellings and for names that are no kind.
func TestLookupKindMatchesLinearSearch(t *testing.T) {
	var names []string
	for _, k := range append(append([]KindInfo(nil), kinds...), internalKinds...) {
		names = append(names, k.Kind, k.Plural, k.Singular)
		names = append(names, k.Short...)
	}
	var all []string
	for _, n := range names {
		all = append(all, n, strings.ToUpper(n), strings.ToLower(n))
	}
	all = append(all, "", "nope", "Servicez", "svcs", "SERVICE ")
	for _, n := range all {
		got, gotOK := LookupKind(n)
		want, wantOK := lookupKindLinear(n)
		if gotOK != wantOK || got.Kind != want.Kind {
			t.Errorf("LookupKind(%q) = %q, %v; the linear search gives %q, %v", n, got.Kind, gotOK, want.Kind, wantOK)
		}
	}
}

// BenchmarkLookupKind: the index against the linear search it replaced, in one run.
func BenchmarkLookupKind(b *testing.B) {
	for _, bc := range []struct {
		name   string
		lookup func(string) (KindInfo, bool)
	}{{"index", LookupKind}, {"linear", lookupKindLinear}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := bc.lookup(KindSecret); !ok {
					b.Fatal("Secret not found")
				}
			}
		})
	}
}
