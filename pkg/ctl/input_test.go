package ctl

import (
	"bytes"
	"context"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func keys(items []item) string {
	var ks []string
	for _, it := range items {
		ks = append(ks, v1.KeyOf(it.obj).String())
	}
	return strings.Join(ks, ",")
}

const (
	svcA = `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"a"},"spec":{"image":"x"}}`
	svcB = `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"b"},"spec":{"image":"x"}}`
	dnsC = `{"apiVersion":"constellation/v1","kind":"DNSRecord","metadata":{"name":"c"},"spec":{"zone":"example.com","name":"c.example.com","content":"192.0.2.1"}}`
)

func TestParseObjects(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // keys, or the error's substring when err
		err      bool
	}{
		{"object", svcA, "services/a", false},
		{"array", "[" + svcA + "," + dnsC + "]", "services/a,dnsrecords/c", false},
		{"ndjson", svcA + "\n" + svcB + "\n\n" + dnsC + "\n", "services/a,services/b,dnsrecords/c", false},
		{"concatenated", svcA + svcB, "services/a,services/b", false},
		{"array then object", "[" + svcA + "]\n" + svcB, "services/a,services/b", false},
		{"list", `{"apiVersion":"constellation/v1","kind":"ServiceList","metadata":{"resourceVersion":"3"},"items":[` + svcA + "," + svcB + `]}`, "services/a,services/b", false},
		{"empty", "  \n", "", false},
		{"unknown field", `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"a"},"spec":{"image":"x","replica":3}}`, "in.json: services/a: spec.replica: unknown field", true},
		{"unknown field, no name", `{"kind":"Service","metadata":{},"spec":{"imag":"x"}}`, "in.json: object 1: spec.imag: unknown field", true},
		{"unknown nested field", `{"kind":"Service","metadata":{"name":"a"},"spec":{"image":"x","ports":[{"containerPort":1},{"contanerPort":2}]}}`, "in.json: services/a: spec.ports[1].contanerPort: unknown field", true},
		{"unknown field under a pointer", `{"kind":"Service","metadata":{"name":"a"},"spec":{"image":"x","healthCheck":{"intervl":"1s"}}}`, "in.json: services/a: spec.healthCheck.intervl: unknown field", true},
		{"unknown top-level field", `{"kind":"Service","metadata":{"name":"a"},"spec":{"image":"x"},"extra":1}`, "in.json: services/a: extra: unknown field", true},
		{"wrong type", `{"kind":"Service","metadata":{"name":"a"},"spec":{"image":"x","replicas":"3"}}`, "in.json: services/a: spec.replicas: cannot use", true},
		{"unknown kind", svcA + "\n" + `{"kind":"Pod","metadata":{"name":"p"}}`, `in.json: object 2: kind: v1: unknown kind "Pod"`, true},
		{"no kind", `{"metadata":{"name":"p"}}`, "in.json: object 1: kind: required", true},
		{"malformed", svcA + "\n{\"kind\":", "in.json: malformed JSON after 1 object(s)", true},
		{"scalar", `42`, "expected a JSON object or array", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := parseObjects("in.json", []byte(tc.in))
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(items); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadPaths(t *testing.T) {
	ctx := context.Background()
	var stderr bytes.Buffer
	r := &reader{stdin: strings.NewReader(svcB), stderr: &stderr, goBin: "go"}

	items, err := r.read(ctx, []string{"testdata/jsondir", "-"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(items), "services/web,dnsrecords/www,leases/lb,services/b"; got != want {
		t.Fatalf("dir + stdin: %q, want %q", got, want)
	}

	// A directory holding a main package is run with go run, from the module root.
	items, err = r.read(ctx, []string{"testdata/gospec"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(items), "services/hello,secrets/hello-db"; got != want {
		t.Fatalf("go spec: %q, want %q", got, want)
	}
	if s := items[1].obj.(*v1.Secret); s.Spec.Data["password"] != "hunter2" {
		t.Fatalf("secret value not read from the spec: %v", s.Spec.Data)
	}
	if !strings.Contains(stderr.String(), "gospec: printed 2 objects") {
		t.Errorf("the spec's stderr was not passed through: %q", stderr.String())
	}

	_, err = r.read(ctx, []string{"testdata/badspec"})
	if err == nil || !strings.Contains(err.Error(), "go run ./pkg/ctl/testdata/badspec") || !strings.Contains(err.Error(), "badspec: cannot build the stack: missing IMAGE") {
		t.Fatalf("failing spec: %v", err)
	}

	r.stdin = strings.NewReader(svcA)
	if _, err := r.read(ctx, []string{"testdata/jsondir/a-web.json", "testdata/jsondir/a-web.json"}); err == nil || !strings.Contains(err.Error(), "services/web is defined twice") {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := r.read(ctx, []string{"testdata/nope.json"}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := r.read(ctx, nil); err == nil {
		t.Fatal("no -f: no error")
	}
	r.stdin = strings.NewReader("")
	if _, err := r.read(ctx, []string{"-"}); err == nil || !strings.Contains(err.Error(), "no objects found") {
		t.Fatalf("empty input: %v", err)
	}
}

func TestPrepare(t *testing.T) {
	items, err := parseObjects("x", []byte(`{"kind":"Service","metadata":{"name":"web"},"spec":{"image":"nginx","ports":[{"containerPort":0}]}}`+svcA))
	if err != nil {
		t.Fatal(err)
	}
	err = prepare(items)
	if err == nil || err.Error() != "services/web: spec.ports[0].containerPort: must be 1-65535, got 0" {
		t.Fatalf("err = %v", err)
	}
	// Defaulting ran on the valid one.
	if a := items[1].obj.(*v1.Service); a.Spec.Replicas == nil || *a.Spec.Replicas != 1 || a.APIVersion != v1.APIVersion {
		t.Fatalf("not defaulted: %+v", a.Spec)
	}
	items, _ = parseObjects("x", []byte(`{"kind":"Service","metadata":{"name":"Bad_Name"},"spec":{"image":"x"}}{"kind":"Service","metadata":{"name":"b"},"spec":{}}`))
	if err := prepare(items); err == nil || !strings.Contains(err.Error(), "and 1 more invalid objects; nothing was applied") {
		t.Fatalf("two invalid: %v", err)
	}
}

func TestResolveKind(t *testing.T) {
	for _, tc := range []struct {
		in     string
		kind   string
		routes bool
		err    bool
	}{
		{"services", v1.KindService, false, false},
		{"service", v1.KindService, false, false},
		{"svc", v1.KindService, false, false},
		{"Service", v1.KindService, false, false},
		{"SVC", v1.KindService, false, false},
		{"dns", v1.KindDNSRecord, false, false},
		{"dnsrecords", v1.KindDNSRecord, false, false},
		{"rs", v1.KindReplicaSet, false, false},
		{"replicaset", v1.KindReplicaSet, false, false},
		{"no", v1.KindNode, false, false},
		{"nodes", v1.KindNode, false, false},
		{"lease", v1.KindLease, false, false},
		{"secrets", v1.KindSecret, false, false},
		{"routes", "", true, false},
		{"route", "", true, false},
		{"pods", "", false, true},
		{"", "", false, true},
	} {
		info, routes, err := resolveKind(tc.in)
		if (err != nil) != tc.err || routes != tc.routes || info.Kind != tc.kind {
			t.Errorf("resolveKind(%q) = %q, %t, %v; want %q, %t, err %t", tc.in, info.Kind, routes, err, tc.kind, tc.routes, tc.err)
		}
	}
}

func TestSplitKindName(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		kind, name string
		rest       int
	}{
		{[]string{"svc"}, "svc", "", 0},
		{[]string{"svc", "web"}, "svc", "web", 0},
		{[]string{"svc/web"}, "svc", "web", 0},
		{[]string{"svc", "a", "b"}, "svc", "a", 1},
	} {
		k, n, rest := splitKindName(tc.args)
		if k != tc.kind || n != tc.name || len(rest) != tc.rest {
			t.Errorf("splitKindName(%v) = %q %q %v", tc.args, k, n, rest)
		}
	}
}
