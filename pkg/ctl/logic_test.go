package ctl

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestRolloutState(t *testing.T) {
	svc := func(gen, observed int64, ready, updated int32, conds ...v1.Condition) *v1.Service {
		return &v1.Service{
			Metadata: v1.ObjectMeta{Name: "hello", Generation: gen},
			Spec:     v1.ServiceSpec{Replicas: i32(3)},
			Status:   v1.ServiceStatus{ObservedGeneration: observed, ReadyReplicas: ready, UpdatedReplicas: updated, Conditions: conds},
		}
	}
	readyT := cond(v1.ServiceReady, v1.ConditionTrue, v1.ReasonAllReplicasReady)
	readyF := cond(v1.ServiceReady, v1.ConditionFalse, v1.ReasonReplicasNotReady)
	for _, tc := range []struct {
		name     string
		s        *v1.Service
		done     bool
		err      string
		progress string
	}{
		{"not observed yet", svc(2, 1, 3, 3, readyT), false, "", "hello: 3/3 ready, 3 updated"},
		{"rolling", svc(2, 2, 1, 1, readyF, cond(v1.ServiceProgressing, v1.ConditionTrue, v1.ReasonRollingUpdate)), false, "", "hello: 1/3 ready, 1 updated"},
		{"ready", svc(2, 2, 3, 3, readyT, cond(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonRolloutComplete)), true, "", ""},
		{"ready, observed ahead", svc(2, 3, 3, 3, readyT), true, "", ""},
		{"rollout failed", svc(2, 2, 1, 0, readyF, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionFalse, Reason: v1.ReasonRolloutFailed, Message: "replica 0 exited 1"}), false, "service/hello: rollout failed: RolloutFailed: replica 0 exited 1", ""},
		{"image not found", svc(1, 1, 0, 0, readyF, cond(v1.ServiceDegraded, v1.ConditionTrue, v1.ReasonImageNotFound)), false, "service/hello: rollout failed: ImageNotFound", ""},
		{"crash loop is waited on", svc(1, 1, 0, 0, readyF, cond(v1.ServiceDegraded, v1.ConditionTrue, v1.ReasonCrashLoop)), false, "", ""},
		{"old generation failure is ignored", svc(2, 1, 0, 0, cond(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonRolloutFailed)), false, "", ""},
		{"no conditions", svc(1, 1, 0, 0), false, "", "hello: 0/3 ready, 0 updated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rolloutState(tc.s)
			if r.done != tc.done {
				t.Errorf("done = %t", r.done)
			}
			if (r.err == nil) != (tc.err == "") || (r.err != nil && r.err.Error() != tc.err) {
				t.Errorf("err = %v, want %q", r.err, tc.err)
			}
			if tc.progress != "" && r.progress != tc.progress {
				t.Errorf("progress = %q, want %q", r.progress, tc.progress)
			}
		})
	}
	deleting := svc(1, 1, 0, 0)
	deleting.Metadata.DeletionTimestamp = &now
	if r := rolloutState(deleting); r.err == nil {
		t.Error("a Service being deleted is not a failure")
	}
}

func TestUnifiedDiff(t *testing.T) {
	lines := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	for _, tc := range []struct {
		name, a, b, want string
	}{
		{"equal", "a\nb\nc", "a\nb\nc", ""},
		{"both empty", "", "", ""},
		{"one change", "1\n2\n3\n4\n5\n6\n7\n8\n9", "1\n2\n3\n4\nX\n6\n7\n8\n9",
			"--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+X\n 6\n 7\n 8\n"},
		{"create", "", "x\ny", "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12", "A\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nB",
			"--- a\n+++ b\n@@ -1,4 +1,4 @@\n-1\n+A\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+B\n"},
		{"close changes merge", "1\n2\n3\n4\n5", "A\n2\n3\n4\nB",
			"--- a\n+++ b\n@@ -1,5 +1,5 @@\n-1\n+A\n 2\n 3\n 4\n-5\n+B\n"},
		{"insertion", "a\nc", "a\nb\nc", "--- a\n+++ b\n@@ -1,2 +1,3 @@\n a\n+b\n c\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unifiedDiff("a", "b", lines(tc.a), lines(tc.b), 3); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestObjectDiffIgnoresStatusAndStoreMetadata(t *testing.T) {
	live := fixtureServices()[1].DeepCopyObject().(*v1.Service)
	live.Metadata.UID, live.Metadata.ResourceVersion, live.Metadata.Generation = "u1", "5", 1
	want := live.DeepCopyObject().(*v1.Service)
	want.Metadata.ResourceVersion, want.Metadata.Generation = "6", 2
	want.Status = v1.ServiceStatus{}
	if d, err := objectDiff("services/db", live, want); err != nil || d != "" {
		t.Fatalf("diff of equal specs: %q, %v", d, err)
	}
	want.Spec.Image = "redis:8"
	d, err := objectDiff("services/db", live, want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, `-    "image": "redis:7",`) || !strings.Contains(d, `+    "image": "redis:8",`) || !strings.HasPrefix(d, "--- services/db (live)\n+++ services/db (after apply)\n") {
		t.Fatalf("diff:\n%s", d)
	}
	d, _ = objectDiff("services/db", nil, want)
	if !strings.HasPrefix(d, "--- /dev/null\n") {
		t.Fatalf("create diff:\n%s", d)
	}
	sec := fixtureOthers()[v1.KindSecret][0]
	d, _ = objectDiff("secrets/db", nil, sec)
	if strings.Contains(d, "hunter2") {
		t.Fatal("diff printed a secret value")
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb\r\n\n  c  ", "a; b; c"},
		{"unknown command \"gt\" for \"ctl\"\n\nDid you mean this?\n\tget\n", `unknown command "gt" for "ctl" (did you mean get?)`},
		{"unknown command \"de\" for \"ctl\"\n\nDid you mean this?\n\tdelete\n\tdescribe\n", `unknown command "de" for "ctl" (did you mean delete or describe?)`},
	} {
		if got := oneLine(errors.New(tc.in)); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
