package ctl

import (
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// FuzzParseObjects feeds arbitrary input to apply's reader: it must never panic, every object
// it returns must have a known kind, and prepare (default + validate) must not panic either.
func FuzzParseObjects(f *testing.F) {
	for _, seed := range []string{
		svcA, "[" + svcA + "," + dnsC + "]", svcA + "\n" + svcB,
		`{"apiVersion":"constellation/v1","kind":"ServiceList","items":[` + svcA + `]}`,
		`{"kind":"Service","metadata":{"name":"a"},"spec":{"image":"x","ports":[{"containerPort":1},{"contanerPort":2}]}}`,
		`{"kind":"Service","metadata":{"name":"a"},"spec":{"healthCheck":{"interval":"x"}}}`,
		`{"kind":"ReplicaSetList","items":[[[]]]}`, `[[{"kind":"Lease","metadata":{"name":"l"}}]]`,
		`{"kind":"Secret","metadata":{"name":"s"},"spec":{"data":{"k":1}}}`, "", "[", "{}", "null", `"x"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		items, err := parseObjects("fuzz", []byte(in))
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(in, "\n") {
				t.Fatalf("multi-line error for one-line input: %q", err)
			}
			return
		}
		for _, it := range items {
			if _, ok := v1.LookupKind(it.obj.GetTypeMeta().Kind); !ok {
				t.Fatalf("object of unknown kind %q", it.obj.GetTypeMeta().Kind)
			}
		}
		_ = prepare(items)
	})
}
