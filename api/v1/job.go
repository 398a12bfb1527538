package v1

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Kinds of one-off and scheduled work (docs/jobs.md).
const (
	KindJob     = "Job"
	KindCronJob = "CronJob"
)

// Job runs one container to completion on one node: the job controller picks the node, that
// node's agent runs the container, retries a failure up to spec.backoffLimit times and reports
// the outcome in status.
type Job struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     JobSpec    `json:"spec"`
	Status   JobStatus  `json:"status,omitempty"`
}

// JobSpec is the container a Job runs and how hard to try. The container fields mean what they
// mean on a Service.
type JobSpec struct {
	// Image is the container image reference. Required.
	Image string `json:"image"`
	// Command overrides the image's entrypoint. Default: the image's.
	Command []string `json:"command,omitempty"`
	// Args overrides the image's cmd. Default: the image's.
	Args []string `json:"args,omitempty"`
	// Env is the container's environment (values or Secret references). Default none.
	Env []EnvVar `json:"env,omitempty"`
	// Networks are Docker networks the container joins, created on demand. Default none
	// (Docker's default bridge).
	Networks []string `json:"networks,omitempty"`
	// Volumes are named volumes or bind mounts (a bind mount needs hostAccess). Default none.
	Volumes []VolumeMount `json:"volumes,omitempty"`
	// Resources limits CPU and memory. Default none.
	Resources *Resources `json:"resources,omitempty"`
	// HostAccess is the opt-in for bind mounts and devices, as on a Service. Default false.
	HostAccess bool `json:"hostAccess,omitempty"`
	// Container options (user, workingDir, tmpfs, ulimits, labels, logging, ...), as on a
	// Service.
	ContainerOptions `json:",inline"`
	// Files puts keys of Configs and Secrets in the container, as a Service's spec.files
	// (docs/spec.md, "files"). Default none.
	Files []FileMount `json:"files,omitempty"`

	// BackoffLimit is how many times a failed attempt is retried: at most backoffLimit+1
	// containers run. Default 0: one attempt.
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
	// ActiveDeadline bounds the Job from its first start: past it the running container is
	// killed and the Job fails (reason DeadlineExceeded). Default nil: no deadline.
	ActiveDeadline *Duration `json:"activeDeadline,omitempty"`
	// Placement restricts the node the Job runs on. Default: any Ready schedulable node.
	Placement *JobPlacement `json:"placement,omitempty"`
}

// JobPlacement restricts where a Job runs.
type JobPlacement struct {
	// NodeSelector: the node must carry all of these labels. Default none.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// JobPhase is where a Job is in its life.
type JobPhase string

// Job phases.
const (
	// JobPending: not running yet (no node, or the node has not started the container).
	JobPending JobPhase = "Pending"
	// JobRunning: an attempt's container runs (or the next attempt waits for its backoff).
	JobRunning JobPhase = "Running"
	// JobSucceeded: an attempt exited 0. Final.
	JobSucceeded JobPhase = "Succeeded"
	// JobFailed: every attempt failed, or the deadline passed. Final.
	JobFailed JobPhase = "Failed"
)

// Job condition types and reasons.
const (
	// JobComplete is True once the Job succeeded.
	JobComplete ConditionType = "Complete"
	// JobFailedCondition is True once the Job failed; its reason says why.
	JobFailedCondition ConditionType = "Failed"

	ReasonBackoffLimitExceeded ConditionReason = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     ConditionReason = "DeadlineExceeded"
	// ReasonNoNode: no Ready node matches the Job's placement; the Job stays Pending.
	ReasonNoNode ConditionReason = "NoNodeAvailable"
	// ReasonJobReplaced: a CronJob with concurrencyPolicy Replace stopped this Job for a newer one.
	ReasonJobReplaced ConditionReason = "Replaced"
	// Reasons of a Job's Complete condition on the way.
	ReasonJobScheduled    ConditionReason = "Scheduled"    // placed on a node (status.node)
	ReasonJobRunning      ConditionReason = "Running"      // an attempt's container runs
	ReasonJobBackoffRetry ConditionReason = "BackoffRetry" // an attempt failed; the next one waits for its backoff
	ReasonJobSucceeded    ConditionReason = "Succeeded"    // an attempt exited 0
	ReasonJobCreateFailed ConditionReason = "CreateFailed" // the next attempt's container could not be made yet
	ReasonSecretNotFound  ConditionReason = "SecretNotFound"
)

// CronJob condition type and reasons.
const (
	// CronJobScheduled is True while the schedule is read; its message names the next run.
	CronJobScheduled ConditionType = "Scheduled"

	ReasonCronScheduled       ConditionReason = "Scheduled"
	ReasonCronSuspended       ConditionReason = "Suspended"
	ReasonCronInvalidSchedule ConditionReason = "InvalidSchedule"
)

// JobStatus is what the job controller and the node running the Job observed.
type JobStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is Pending, Running, Succeeded or Failed ("" before the controller saw the Job).
	Phase JobPhase `json:"phase,omitempty"`
	// Node is the node the Job runs on. Written by the job controller.
	Node string `json:"node,omitempty"`
	// StartTime is when the first attempt's container started.
	StartTime *time.Time `json:"startTime,omitempty"`
	// CompletionTime is when the Job reached Succeeded or Failed.
	CompletionTime *time.Time `json:"completionTime,omitempty"`
	// ExitCode is the exit code of the last attempt that exited.
	ExitCode *int32 `json:"exitCode,omitempty"`
	// Attempts is how many containers were started for the Job.
	Attempts int32 `json:"attempts,omitempty"`
	// ContainerID is the current (or last) attempt's container.
	ContainerID string `json:"containerID,omitempty"`
	// Message says what is happening, in words (the last attempt's log tail on failure).
	Message    string      `json:"message,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
}

// Finished reports whether the Job reached a final phase.
func (s *JobStatus) Finished() bool { return s.Phase == JobSucceeded || s.Phase == JobFailed }

func (j *Job) GetConditions() *[]Condition { return &j.Status.Conditions }
func (j *Job) GetMetadata() *ObjectMeta    { return &j.Metadata }
func (j *Job) DeepCopyObject() Object      { return deepCopy(j) }

// DefaultBackoffLimit is spec.backoffLimit when unset: no retry.
const DefaultBackoffLimit = 0

// Default fills in what the operator left out.
func (j *Job) Default() {
	defaultMeta(&j.TypeMeta, KindJob)
	if j.Spec.BackoffLimit == nil {
		j.Spec.BackoffLimit = ptr(int32(DefaultBackoffLimit))
	}
	defaultFiles(j.Spec.Files)
}

// MaxBackoffLimit caps spec.backoffLimit.
const MaxBackoffLimit = 100

// Validate reports every problem in the Job.
func (j *Job) Validate() ErrorList {
	errs := validateMeta(&j.TypeMeta, &j.Metadata, KindJob)
	errs = append(errs, j.Spec.validate(path("spec"))...)
	return errs
}

func (s *JobSpec) validate(sp path) ErrorList {
	// The container fields are checked as a Service's would be, through a Service holding
	// them, so that both kinds accept and refuse the same values with the same messages.
	svc := &Service{TypeMeta: TypeMeta{APIVersion, KindService}, Metadata: ObjectMeta{Name: "job"}, Spec: s.ServiceSpec()}
	var errs ErrorList
	for _, e := range svc.Validate() {
		if strings.HasPrefix(e.Field, "spec") {
			errs = append(errs, &FieldError{Field: string(sp) + strings.TrimPrefix(e.Field, "spec"), Message: e.Message})
		}
	}
	if s.BackoffLimit != nil && (*s.BackoffLimit < 0 || *s.BackoffLimit > MaxBackoffLimit) {
		errs.add(sp.child("backoffLimit").String(), "must be 0-%d, got %d", MaxBackoffLimit, *s.BackoffLimit)
	}
	if s.ActiveDeadline != nil && s.ActiveDeadline.Duration < time.Second {
		errs.add(sp.child("activeDeadline").String(), "must be at least 1s, got %s", s.ActiveDeadline.Duration)
	}
	if s.Placement != nil {
		errs = append(errs, validateLabels(sp.child("placement").child("nodeSelector"), s.Placement.NodeSelector)...)
	}
	return errs
}

// ServiceSpec returns the container fields of the Job as a one-replica Service spec, for the
// code that validates and builds Service containers.
func (s *JobSpec) ServiceSpec() ServiceSpec {
	return ServiceSpec{
		Image: s.Image, Command: s.Command, Args: s.Args, Env: s.Env, Networks: s.Networks,
		Volumes: s.Volumes, Resources: s.Resources, HostAccess: s.HostAccess,
		ContainerOptions: s.ContainerOptions, Files: s.Files, Replicas: ptr(int32(1)),
	}
}

// CronJob creates Jobs on a schedule (docs/jobs.md).
type CronJob struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     CronJobSpec   `json:"spec"`
	Status   CronJobStatus `json:"status,omitempty"`
}

// ConcurrencyPolicy says what a CronJob does when a run is due while an earlier one runs.
type ConcurrencyPolicy string

// Concurrency policies (Kubernetes' names).
const (
	ConcurrencyAllow   ConcurrencyPolicy = "Allow"
	ConcurrencyForbid  ConcurrencyPolicy = "Forbid"
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// CronJob defaults.
const (
	DefaultSuccessfulJobsHistoryLimit = 3
	DefaultFailedJobsHistoryLimit     = 1
	MaxJobsHistoryLimit               = 100
)

// CronJobSpec is the schedule and the Job it creates.
type CronJobSpec struct {
	// Schedule is a 5-field cron expression ("*/5 * * * *", minute hour day-of-month month
	// day-of-week) or a descriptor ("@hourly", "@daily", "@every 10m"), as
	// github.com/robfig/cron/v3's standard parser reads it. Required.
	Schedule string `json:"schedule"`
	// TimeZone is the IANA time zone the schedule is read in ("Europe/Paris"). Default "": UTC.
	TimeZone string `json:"timeZone,omitempty"`
	// ConcurrencyPolicy is Allow (the default): runs may overlap; Forbid: a run due while one
	// is active is skipped; Replace: the active run is stopped (Failed, reason Replaced) and the
	// new one started.
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
	// StartingDeadline: a run missed by more than this (the controller was down, no leader) is
	// skipped, not started late. Default nil: a missed run starts as soon as it can (only the
	// latest missed one).
	StartingDeadline *Duration `json:"startingDeadline,omitempty"`
	// SuccessfulJobsHistoryLimit is how many succeeded Jobs are kept. Default 3.
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`
	// FailedJobsHistoryLimit is how many failed Jobs are kept. Default 1.
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`
	// Suspend stops new runs (running ones finish). Default false.
	Suspend bool `json:"suspend,omitempty"`
	// JobTemplate is the spec of every Job created. Required.
	JobTemplate JobSpec `json:"jobTemplate"`
}

// CronJobStatus is what the job controller did last.
type CronJobStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Active names the Jobs created by this CronJob that have not finished.
	Active []string `json:"active,omitempty"`
	// LastScheduleTime is the scheduled time of the last run created (or skipped by Forbid).
	LastScheduleTime *time.Time `json:"lastScheduleTime,omitempty"`
	// LastSuccessfulTime is the completion time of the last Job that succeeded.
	LastSuccessfulTime *time.Time  `json:"lastSuccessfulTime,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
}

func (c *CronJob) GetConditions() *[]Condition { return &c.Status.Conditions }
func (c *CronJob) GetMetadata() *ObjectMeta    { return &c.Metadata }
func (c *CronJob) DeepCopyObject() Object      { return deepCopy(c) }

// Default fills in what the operator left out.
func (c *CronJob) Default() {
	defaultMeta(&c.TypeMeta, KindCronJob)
	if c.Spec.ConcurrencyPolicy == "" {
		c.Spec.ConcurrencyPolicy = ConcurrencyAllow
	}
	if c.Spec.SuccessfulJobsHistoryLimit == nil {
		c.Spec.SuccessfulJobsHistoryLimit = ptr(int32(DefaultSuccessfulJobsHistoryLimit))
	}
	if c.Spec.FailedJobsHistoryLimit == nil {
		c.Spec.FailedJobsHistoryLimit = ptr(int32(DefaultFailedJobsHistoryLimit))
	}
	if c.Spec.JobTemplate.BackoffLimit == nil {
		c.Spec.JobTemplate.BackoffLimit = ptr(int32(DefaultBackoffLimit))
	}
	defaultFiles(c.Spec.JobTemplate.Files)
}

// CronParser reads CronJob schedules: the standard 5 fields and the @ descriptors
// (github.com/robfig/cron/v3, a small, dependency-free library that Kubernetes' own CronJob
// controller uses too).
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Location returns the time zone the schedule is read in: spec.timeZone, else UTC.
func (c *CronJobSpec) Location() (*time.Location, error) {
	if c.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(c.TimeZone)
}

// MaxCronJobName keeps the Job names a CronJob creates ("<name>-<unix minute>", 8 digits
// until the year 2160) DNS labels.
const MaxCronJobName = 52

// Validate reports every problem in the CronJob.
func (c *CronJob) Validate() ErrorList {
	errs := validateMeta(&c.TypeMeta, &c.Metadata, KindCronJob)
	sp := path("spec")
	if len(c.Metadata.Name) > MaxCronJobName {
		errs.add(path("metadata").child("name").String(), "must be at most %d characters (the Jobs it creates append \"-<unix minute>\"), got %d", MaxCronJobName, len(c.Metadata.Name))
	}
	switch {
	case strings.TrimSpace(c.Spec.Schedule) == "":
		errs.add(sp.child("schedule").String(), "required")
	case strings.HasPrefix(c.Spec.Schedule, "TZ=") || strings.HasPrefix(c.Spec.Schedule, "CRON_TZ="):
		errs.add(sp.child("schedule").String(), "must not set a time zone: use spec.timeZone")
	default:
		if _, err := CronParser.Parse(c.Spec.Schedule); err != nil {
			errs.add(sp.child("schedule").String(), "invalid cron schedule %q: %v", c.Spec.Schedule, err)
		}
	}
	if c.Spec.TimeZone != "" {
		if _, err := time.LoadLocation(c.Spec.TimeZone); err != nil {
			errs.add(sp.child("timeZone").String(), "must be an IANA time zone like \"Europe/Paris\", got %q", c.Spec.TimeZone)
		}
	}
	switch c.Spec.ConcurrencyPolicy {
	case "", ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		errs.add(sp.child("concurrencyPolicy").String(), "must be Allow, Forbid or Replace, got %q", c.Spec.ConcurrencyPolicy)
	}
	if d := c.Spec.StartingDeadline; d != nil && d.Duration < time.Second {
		errs.add(sp.child("startingDeadline").String(), "must be at least 1s, got %s", d.Duration)
	}
	for _, l := range []struct {
		name string
		v    *int32
	}{{"successfulJobsHistoryLimit", c.Spec.SuccessfulJobsHistoryLimit}, {"failedJobsHistoryLimit", c.Spec.FailedJobsHistoryLimit}} {
		if l.v != nil && (*l.v < 0 || *l.v > MaxJobsHistoryLimit) {
			errs.add(sp.child(l.name).String(), "must be 0-%d, got %d", MaxJobsHistoryLimit, *l.v)
		}
	}
	errs = append(errs, c.Spec.JobTemplate.validate(sp.child("jobTemplate"))...)
	return errs
}

// Labels on the Jobs a CronJob creates, so that its Jobs are found with a label selector.
const LabelCronJob = "constellation/cronjob"
