package ctl

import (
	"testing"
)

// A dependsOn cycle made of objects of one apply is refused before anything is sent, with the
// path.
func TestPrepareRefusesDependsOnCycles(t *testing.T) {
	items, err := parseObjects("x", []byte(
		`{"kind":"Service","metadata":{"name":"web"},"spec":{"image":"nginx","dependsOn":[{"service":"api"}]}}`+
			`{"kind":"Service","metadata":{"name":"api"},"spec":{"image":"nginx","dependsOn":[{"service":"web","condition":"healthy"}]}}`+
			`{"kind":"Service","metadata":{"name":"db"},"spec":{"image":"postgres"}}`))
	if err != nil {
		t.Fatal(err)
	}
	err = prepare(items)
	if err == nil || err.Error() != "services/api: spec.dependsOn: cycle api -> web -> api" {
		t.Fatalf("err = %v", err)
	}
	items, _ = parseObjects("x", []byte(
		`{"kind":"Service","metadata":{"name":"web"},"spec":{"image":"nginx","dependsOn":[{"service":"api"},{"service":"db"}]}}`+
			`{"kind":"Service","metadata":{"name":"api"},"spec":{"image":"nginx","dependsOn":[{"service":"db","condition":"healthy"}]}}`+
			`{"kind":"Service","metadata":{"name":"db"},"spec":{"image":"postgres"}}`))
	if err := prepare(items); err != nil {
		t.Fatalf("no cycle: %v", err)
	}
}
