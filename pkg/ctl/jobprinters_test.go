package ctl

import (
	"bytes"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestJobKindsGolden(t *testing.T) {
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	code := int32(3)
	two := int32(2)
	objs := map[string][]v1.Object{
		v1.KindConfig: {
			&v1.Config{Metadata: v1.ObjectMeta{Name: "prom", CreationTimestamp: at(time.Hour)},
				Spec: v1.ConfigSpec{Data: map[string]string{"prometheus.yml": "scrape: {}", "rules.yml": "x"}, BinaryData: map[string][]byte{"logo.png": {1, 2, 3}}}},
		},
		v1.KindJob: {
			&v1.Job{Metadata: v1.ObjectMeta{Name: "backup-29471234", CreationTimestamp: at(10 * time.Minute)},
				Spec:   v1.JobSpec{Image: "restic:0.17", BackoffLimit: &two},
				Status: v1.JobStatus{Phase: v1.JobFailed, Node: "n1", Attempts: 3, ExitCode: &code, StartTime: at(9 * time.Minute), CompletionTime: at(7 * time.Minute), Message: "attempt 3 exited with code 3"}},
			&v1.Job{Metadata: v1.ObjectMeta{Name: "migrate", CreationTimestamp: at(time.Minute)}, Spec: v1.JobSpec{Image: "app:2"}},
		},
		v1.KindCronJob: {
			&v1.CronJob{Metadata: v1.ObjectMeta{Name: "backup", CreationTimestamp: at(48 * time.Hour)},
				Spec:   v1.CronJobSpec{Schedule: "30 3 * * *", TimeZone: "Europe/Paris", ConcurrencyPolicy: v1.ConcurrencyForbid, JobTemplate: v1.JobSpec{Image: "restic:0.17"}},
				Status: v1.CronJobStatus{Active: []string{"backup-29471234"}, LastScheduleTime: at(10 * time.Minute)}},
		},
	}
	for kind, list := range objs {
		for _, wide := range []bool{false, true} {
			name := kind + ".txt"
			if wide {
				name = kind + "-wide.txt"
			}
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := objectTable(kind, list, wide, now).write(&buf, false); err != nil {
					t.Fatal(err)
				}
				golden(t, name, buf.Bytes())
			})
		}
	}
}

func TestDescribeJob(t *testing.T) {
	start := now.Add(-2 * time.Minute)
	code := int32(1)
	j := &v1.Job{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindJob}, Metadata: v1.ObjectMeta{Name: "migrate"},
		Spec: v1.JobSpec{Image: "app:2"},
		Status: v1.JobStatus{Phase: v1.JobFailed, Node: "n1", Attempts: 1, ExitCode: &code, StartTime: &start, Message: "attempt 1 exited with code 1",
			Conditions: []v1.Condition{{Type: v1.JobFailedCondition, Status: v1.ConditionTrue, Reason: v1.ReasonBackoffLimitExceeded}}}}
	var buf bytes.Buffer
	if err := describe(&buf, j, nil, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Phase:", "Failed", "Exit code:", "attempt 1 exited with code 1", "BackoffLimitExceeded", "n1"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Fatalf("describe lacks %q:\n%s", want, buf.String())
		}
	}
}
