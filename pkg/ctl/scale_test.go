package ctl_test

import (
	"context"
	"testing"
)

// TestScale writes spec.replicas and nothing else; bad input (a negative count, a global
// Service, another kind, no --replicas) is refused by name and changes nothing.
func TestScale(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	before := getService(t, c.st, "hello")
	expect(t, c.run(t, "", "scale", "svc/hello", "--replicas", "3"), 0, "service/hello scaled from 2 to 3 replicas\n", "")
	after := getService(t, c.st, "hello")
	if *after.Spec.Replicas != 3 || after.Metadata.Generation != before.Metadata.Generation+1 || after.Spec.Image != before.Spec.Image {
		t.Fatalf("after scale: replicas %d generation %d image %s", *after.Spec.Replicas, after.Metadata.Generation, after.Spec.Image)
	}
	expect(t, c.run(t, "", "scale", "hello", "--replicas", "3"), 0, "service/hello unchanged (3 replicas)\n", "")
	expect(t, c.run(t, "", "scale", "services/hello", "--replicas=0"), 0, "service/hello scaled from 3 to 0 replicas\n", "")
	if s := getService(t, c.st, "hello"); *s.Spec.Replicas != 0 {
		t.Fatalf("replicas %d, want 0", *s.Spec.Replicas)
	}

	global := `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"agent"},"spec":{"image":"agent:1","mode":"global"}}`
	expect(t, c.run(t, global, "apply", "-f", "-"), 0, "service/agent created\n", "")
	rv, err := c.st.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"scale", "svc/hello", "--replicas", "-1"}, "error: scale services/hello: --replicas must be 0 or more, got -1\n"},
		{[]string{"scale", "svc/hello"}, "error: scale services/hello: --replicas N is required\n"},
		{[]string{"scale", "svc/agent", "--replicas", "2"}, "error: services/agent: spec.mode is global (one replica per eligible node): it cannot be scaled; change spec.placement.nodeSelector instead\n"},
		{[]string{"scale", "rs/mongo", "--replicas", "2"}, "error: scale works on Services only, got replicasets/mongo\n"},
		{[]string{"scale", "svc/nope", "--replicas", "2"}, "error: services/nope: not found\n"},
		{[]string{"scale", "svc/Bad_Name", "--replicas", "2"}, "error: scale: services/Bad_Name: metadata.name: must be a DNS label (lowercase letters, digits, '-')\n"},
	} {
		expect(t, c.run(t, "", tc.args...), 1, "", tc.stderr)
	}
	if now, _ := c.st.Revision(context.Background()); now != rv {
		t.Fatalf("refused scales moved the store from revision %d to %d", rv, now)
	}
	if s := getService(t, c.st, "agent"); s.Spec.Replicas != nil {
		t.Fatalf("global Service got replicas %d", *s.Spec.Replicas)
	}
}
