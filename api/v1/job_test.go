package v1

import (
	"strings"
	"testing"
	"time"
)

func TestJobValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  func(*JobSpec)
		field string
		msg   string
	}{
		{"valid", func(s *JobSpec) {
			s.Env = []EnvVar{{Name: "A", Value: "b"}}
			s.ActiveDeadline = &Duration{time.Minute}
			s.Placement = &JobPlacement{NodeSelector: map[string]string{"zone": "a"}}
		}, "", ""},
		{"no image", func(s *JobSpec) { s.Image = "" }, "spec.image", "required"},
		{"bad env", func(s *JobSpec) { s.Env = []EnvVar{{Name: "1x"}} }, "spec.env[0].name", "C identifier"},
		{"backoff", func(s *JobSpec) { s.BackoffLimit = ptr(int32(-1)) }, "spec.backoffLimit", "0-100"},
		{"deadline", func(s *JobSpec) { s.ActiveDeadline = &Duration{time.Millisecond} }, "spec.activeDeadline", "at least 1s"},
		{"selector", func(s *JobSpec) { s.Placement = &JobPlacement{NodeSelector: map[string]string{"a": "b c"}} }, "spec.placement.nodeSelector[a]", "invalid label value"},
		{"user", func(s *JobSpec) { s.User = "a b" }, "spec.user", "uid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &Job{Metadata: ObjectMeta{Name: "backup"}, Spec: JobSpec{Image: "busybox"}}
			tc.spec(&j.Spec)
			j.Default()
			checkErr(t, j.Validate(), tc.field, tc.msg)
		})
	}
}

func TestCronJobValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  func(*CronJob)
		field string
		msg   string
	}{
		{"valid", func(c *CronJob) { c.Spec.TimeZone = "Europe/Paris"; c.Spec.ConcurrencyPolicy = ConcurrencyForbid }, "", ""},
		{"descriptor", func(c *CronJob) { c.Spec.Schedule = "@every 10m" }, "", ""},
		{"no schedule", func(c *CronJob) { c.Spec.Schedule = " " }, "spec.schedule", "required"},
		{"six fields", func(c *CronJob) { c.Spec.Schedule = "0 */5 * * * *" }, "spec.schedule", "invalid cron schedule"},
		{"bad minute", func(c *CronJob) { c.Spec.Schedule = "61 * * * *" }, "spec.schedule", "invalid cron schedule"},
		{"tz in schedule", func(c *CronJob) { c.Spec.Schedule = "CRON_TZ=UTC 0 * * * *" }, "spec.schedule", "spec.timeZone"},
		{"bad zone", func(c *CronJob) { c.Spec.TimeZone = "Mars/Olympus" }, "spec.timeZone", "IANA"},
		{"policy", func(c *CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }, "spec.concurrencyPolicy", "Allow, Forbid or Replace"},
		{"history", func(c *CronJob) { c.Spec.FailedJobsHistoryLimit = ptr(int32(-1)) }, "spec.failedJobsHistoryLimit", "0-100"},
		{"deadline", func(c *CronJob) { c.Spec.StartingDeadline = &Duration{0} }, "spec.startingDeadline", "at least 1s"},
		{"template", func(c *CronJob) { c.Spec.JobTemplate.Image = "" }, "spec.jobTemplate.image", "required"},
		{"template backoff", func(c *CronJob) { c.Spec.JobTemplate.BackoffLimit = ptr(int32(1000)) }, "spec.jobTemplate.backoffLimit", "0-100"},
		{"long name", func(c *CronJob) { c.Metadata.Name = strings.Repeat("a", 53) }, "metadata.name", "at most 52"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &CronJob{Metadata: ObjectMeta{Name: "nightly"}, Spec: CronJobSpec{Schedule: "30 3 * * *", JobTemplate: JobSpec{Image: "busybox"}}}
			tc.spec(c)
			c.Default()
			checkErr(t, c.Validate(), tc.field, tc.msg)
		})
	}
}

func TestCronJobDefaults(t *testing.T) {
	c := &CronJob{Metadata: ObjectMeta{Name: "n"}, Spec: CronJobSpec{Schedule: "@daily", JobTemplate: JobSpec{Image: "x"}}}
	c.Default()
	if c.Spec.ConcurrencyPolicy != ConcurrencyAllow || *c.Spec.SuccessfulJobsHistoryLimit != 3 || *c.Spec.FailedJobsHistoryLimit != 1 || *c.Spec.JobTemplate.BackoffLimit != 0 {
		t.Fatalf("defaults: %+v", c.Spec)
	}
	if info, ok := LookupKind("cj"); !ok || info.Kind != KindCronJob {
		t.Fatal("cj is not CronJob's short name")
	}
	if info, ok := LookupKind("jobs"); !ok || info.Kind != KindJob {
		t.Fatal("jobs is not a kind")
	}
}

func checkErr(t *testing.T, errs ErrorList, field, msg string) {
	t.Helper()
	if field == "" {
		if len(errs) != 0 {
			t.Fatalf("want valid, got %v", errs)
		}
		return
	}
	for _, e := range errs {
		if e.Field == field && strings.Contains(e.Message, msg) {
			return
		}
	}
	t.Fatalf("want %s: ...%s..., got %v", field, msg, errs)
}

func TestJobFiles(t *testing.T) {
	j := &Job{Metadata: ObjectMeta{Name: "backup"}, Spec: JobSpec{Image: "restic", Files: []FileMount{{Secret: "repo"}, {Config: "c", Path: "rel"}}}}
	j.Default()
	if j.Spec.Files[0].Path != "/run/secrets/repo" || j.Spec.Files[0].Mode != 0o400 {
		t.Fatalf("defaults %+v", j.Spec.Files[0])
	}
	checkErr(t, j.Validate(), "spec.files[1].path", "must be absolute")
	c := &CronJob{Metadata: ObjectMeta{Name: "n"}, Spec: CronJobSpec{Schedule: "@daily", JobTemplate: JobSpec{Image: "x", Files: []FileMount{{Config: "a", Secret: "b"}}}}}
	c.Default()
	checkErr(t, c.Validate(), "spec.jobTemplate.files[0]", "exactly one of config and secret")
}
