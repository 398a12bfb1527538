package ctl

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestRolloutStatusState(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	svc := func(replicas, updated, ready int32, conds ...v1.Condition) *v1.Service {
		return &v1.Service{
			Metadata: v1.ObjectMeta{Name: "hello", Generation: 2},
			Spec:     v1.ServiceSpec{Image: "hello:2", Replicas: i32(3)},
			Status:   v1.ServiceStatus{ObservedGeneration: 2, Replicas: replicas, UpdatedReplicas: updated, ReadyReplicas: ready, Conditions: conds},
		}
	}
	deleting := svc(3, 3, 3)
	deleting.Metadata.DeletionTimestamp = &now
	upstream := svc(0, 0, 0)
	upstream.Spec.Image, upstream.Spec.Upstreams = "", []v1.Upstream{{URL: "https://example.com"}}
	global := svc(2, 2, 2)
	global.Spec.Replicas, global.Spec.Mode, global.Status.DesiredReplicas = nil, v1.ModeGlobal, 3
	for _, tc := range []struct {
		name string
		s    *v1.Service
		want string // "done: ...", "fail: ..." or the progress line
	}{
		{"complete", svc(3, 3, 3), "done: service/hello successfully rolled out: 3 of 3 updated replicas are ready"},
		{"Ready is not enough", svc(3, 1, 3, cond(v1.ServiceReady, v1.ConditionTrue, v1.ReasonAllReplicasReady)), "Waiting for rollout: 1 of 3 replicas updated"},
		{"surge", svc(4, 3, 3), "Waiting for rollout: 1 old replicas are pending termination"},
		{"scale down", svc(5, 5, 5), "Waiting for rollout: 2 replicas above the 3 wanted are pending termination"},
		{"not ready", svc(3, 3, 2), "Waiting for rollout: 2 of 3 updated replicas are ready"},
		{"deadline", svc(3, 1, 1, condMsg(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonRolloutFailed, "no progress for 5m0s")), "fail: service/hello: rollout failed: RolloutFailed: no progress for 5m0s"},
		{"invalid", svc(3, 1, 1, condMsg(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonInvalidSpec, "spec.image: required")), "fail: service/hello: rollout failed: InvalidSpec: spec.image: required"},
		{"image not found", svc(3, 1, 1, cond(v1.ServiceDegraded, v1.ConditionTrue, v1.ReasonImageNotFound)), "fail: service/hello: rollout failed: ImageNotFound"},
		{"crash loop is waited on", svc(3, 1, 1, cond(v1.ServiceDegraded, v1.ConditionTrue, v1.ReasonCrashLoop)), "Waiting for rollout: 1 of 3 replicas updated"},
		{"dependency", svc(3, 0, 0, condMsg(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonWaitingForDependency, "3 of 3 replicas wait")), "Waiting for rollout: WaitingForDependency: 3 of 3 replicas wait"},
		{"complete condition", svc(3, 3, 3, cond(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonRolloutComplete)), "done: service/hello successfully rolled out: 3 of 3 updated replicas are ready"},
		{"deleting", deleting, "fail: service/hello is being deleted"},
		{"upstreams", upstream, "done: service/hello has no replicas (upstreams): nothing to roll out"},
		{"global", global, "Waiting for rollout: 2 of 3 replicas updated"},
	} {
		r := rolloutStatus(tc.s)
		got := r.progress
		switch {
		case r.err != nil:
			got = "fail: " + r.err.Error()
		case r.done:
			got = "done: " + r.progress
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	old := svc(3, 3, 3)
	old.Status.ObservedGeneration = 1
	old.Status.Conditions = []v1.Condition{cond(v1.ServiceProgressing, v1.ConditionFalse, v1.ReasonRolloutFailed)}
	if r := rolloutStatus(old); r.done || r.err != nil || r.progress != "Waiting for rollout: generation 2 not yet observed" {
		t.Errorf("the previous generation's failure counted: %+v", r)
	}
}

func TestRestartTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 700_000_000, time.FixedZone("CET", 3600))
	want := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	if got := restartTime(now, nil); !got.Equal(want) || got.Location() != time.UTC || got.Nanosecond() != 0 {
		t.Errorf("first restart: %v", got)
	}
	earlier := want.Add(-time.Hour)
	if got := restartTime(now, &earlier); !got.Equal(want) {
		t.Errorf("after an earlier one: %v", got)
	}
	same := want
	if got := restartTime(now, &same); !got.Equal(want.Add(time.Second)) {
		t.Errorf("same second: %v", got)
	}
	future := want.Add(time.Hour) // written by a node whose clock runs ahead
	if got := restartTime(now, &future); !got.Equal(future.Add(time.Second)) {
		t.Errorf("after a later one: %v", got)
	}
}

func TestChangeSummary(t *testing.T) {
	at := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	base := v1.ServiceSpec{Image: "web:1", Env: []v1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}}
	rev := func(hash string, f func(*v1.ServiceSpec)) *v1.ServiceRevision {
		sp := base
		sp.Env = append([]v1.EnvVar(nil), base.Env...)
		if f != nil {
			f(&sp)
		}
		return &v1.ServiceRevision{SpecHash: hash, Spec: sp}
	}
	prev := rev("h1", nil)
	for _, tc := range []struct {
		name string
		cur  *v1.ServiceRevision
		want string
	}{
		{"command and args", rev("h2", func(s *v1.ServiceSpec) { s.Command, s.Args = []string{"/app"}, []string{"serve", "a b"} }), `command ["/app"]; args ["serve" "a b"]`},
		{"same container spec", rev("h2", nil), "no container change"},
		{"env value, names only", rev("h2", func(s *v1.ServiceSpec) { s.Env[1].Value = "hunter2" }), "env ~B"},
		{"env secretRef", rev("h2", func(s *v1.ServiceSpec) {
			s.Env[0] = v1.EnvVar{Name: "A", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "pw"}}
		}), "env ~A"},
		{"env order", rev("h2", func(s *v1.ServiceSpec) { s.Env[0], s.Env[1] = s.Env[1], s.Env[0] }), "env order"},
		{"restart", rev("h2", func(s *v1.ServiceSpec) { s.RestartedAt = &at }), "restarted at 2026-12-02T11:00:00Z"},
		{"other fields by name", rev("h2", func(s *v1.ServiceSpec) {
			s.HealthCheck = &v1.HealthCheck{}
			s.Volumes = []v1.VolumeMount{{Source: "data", Target: "/data"}}
			s.HostNetwork = true
		}), "healthCheck, hostNetwork, volumes changed"},
		{"Secret values", rev("h1-abc", nil), "Secret values"},
		{"image and env", rev("h2", func(s *v1.ServiceSpec) { s.Image = "web:2"; s.Env = s.Env[:1] }), "image web:1 -> web:2; env -B"},
	} {
		if got := changeSummary(prev, tc.cur); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if strings.Contains(changeSummary(prev, tc.cur), "hunter2") {
			t.Errorf("%s: a value printed", tc.name)
		}
	}
	withRestart := rev("h2", func(s *v1.ServiceSpec) { s.RestartedAt = &at })
	if got := changeSummary(withRestart, prev); got != "restartedAt removed" {
		t.Errorf("restartedAt removed: %q", got)
	}
	if got := changeSummary(nil, prev); got != "image web:1" {
		t.Errorf("oldest: %q", got)
	}
	if got := changeSummary(nil, &v1.ServiceRevision{Spec: v1.ServiceSpec{Upstreams: []v1.Upstream{{URL: "https://example.com"}}}}); got != "upstreams" {
		t.Errorf("oldest upstream: %q", got)
	}
}

func condMsg(t v1.ConditionType, s v1.ConditionStatus, reason v1.ConditionReason, msg string) v1.Condition {
	c := cond(t, s, reason)
	c.Message = msg
	return c
}
