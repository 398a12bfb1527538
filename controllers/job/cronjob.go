package job

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// CronPlan is what one pass over a CronJob decides, computed by PlanCronJob from the CronJob,
// its Jobs and the time: pure, table-tested.
type CronPlan struct {
	// Create is the Job to create for the run due at Due (nil: none).
	Create *v1.Job
	// Due is the scheduled time of the run acted on (created or skipped); zero: none due.
	Due time.Time
	// Skip says why the run due was not created: "forbid" or "deadline" ("" when created).
	Skip string
	// Delete are Jobs to delete: old history beyond the limits, and with Replace the active
	// Jobs a new run replaces.
	Delete []*v1.Job
	// Active are the names of the unfinished Jobs after the plan.
	Active []string
	// LastSuccessful is the latest completion time of a succeeded Job.
	LastSuccessful *time.Time
	// Next is when the next run is due (zero when suspended).
	Next time.Time
}

// PlanCronJob decides what to do for cj (defaulted, valid) owning jobs at now.
func PlanCronJob(cj *v1.CronJob, jobs []*v1.Job, now time.Time, maxMissed int) (CronPlan, error) {
	var p CronPlan
	sched, err := v1.CronParser.Parse(cj.Spec.Schedule)
	if err != nil {
		return p, fmt.Errorf("spec.schedule: %w", err)
	}
	loc, err := cj.Spec.Location()
	if err != nil {
		return p, fmt.Errorf("spec.timeZone: %w", err)
	}
	var active, succeeded, failed []*v1.Job
	for _, j := range jobs {
		switch {
		case j.Status.Phase == v1.JobSucceeded:
			succeeded = append(succeeded, j)
			if t := j.Status.CompletionTime; t != nil && (p.LastSuccessful == nil || t.After(*p.LastSuccessful)) {
				p.LastSuccessful = t
			}
		case j.Status.Phase == v1.JobFailed:
			failed = append(failed, j)
		case j.Metadata.DeletionTimestamp == nil:
			active = append(active, j)
		}
	}
	p.Delete = append(p.Delete, pruned(succeeded, int(*cj.Spec.SuccessfulJobsHistoryLimit))...)
	p.Delete = append(p.Delete, pruned(failed, int(*cj.Spec.FailedJobsHistoryLimit))...)

	// The runs due since the last one acted on (or since the CronJob was created): only the
	// latest counts, as in Kubernetes, so that an agent down for a day does not start 24
	// hourly runs when it is back.
	since := now
	if cj.Metadata.CreationTimestamp != nil {
		since = *cj.Metadata.CreationTimestamp
	}
	if t := cj.Status.LastScheduleTime; t != nil {
		since = *t
	}
	localNow := now.In(loc)
	var due time.Time
	for t, n := sched.Next(since.In(loc)), 0; !t.After(localNow) && n < maxMissed; t, n = sched.Next(t), n+1 {
		due = t
	}
	p.Next = sched.Next(localNow)
	if cj.Spec.Suspend {
		p.Next = time.Time{}
		due = time.Time{}
	}
	names := func(js []*v1.Job) []string {
		out := make([]string, 0, len(js))
		for _, j := range js {
			out = append(out, j.Metadata.Name)
		}
		sort.Strings(out)
		return out
	}
	p.Active = names(active)
	if due.IsZero() {
		return p, nil
	}
	p.Due = due
	name := JobName(cj.Metadata.Name, due)
	for _, j := range jobs {
		if j.Metadata.Name == name {
			return p, nil // created by an earlier pass whose status write was lost
		}
	}
	if d := cj.Spec.StartingDeadline; d != nil && now.Sub(due) > d.Duration {
		p.Skip = "deadline"
		return p, nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case v1.ConcurrencyForbid:
		if len(active) > 0 {
			p.Skip = "forbid"
			return p, nil
		}
	case v1.ConcurrencyReplace:
		p.Delete = append(p.Delete, active...)
		active = nil
	}
	p.Create = newJob(cj, name)
	p.Active = append(names(active), name)
	sort.Strings(p.Active)
	return p, nil
}

// pruned returns the finished Jobs beyond the newest limit (by completion, then name).
func pruned(js []*v1.Job, limit int) []*v1.Job {
	if len(js) <= limit {
		return nil
	}
	sort.Slice(js, func(a, b int) bool {
		ta, tb := completion(js[a]), completion(js[b])
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return js[a].Metadata.Name > js[b].Metadata.Name
	})
	return js[limit:]
}

func completion(j *v1.Job) time.Time {
	if j.Status.CompletionTime != nil {
		return *j.Status.CompletionTime
	}
	return time.Time{}
}

func newJob(cj *v1.CronJob, name string) *v1.Job {
	tmpl := cj.DeepCopyObject().(*v1.CronJob).Spec.JobTemplate
	j := &v1.Job{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindJob},
		Metadata: v1.ObjectMeta{
			Name:            name,
			Labels:          map[string]string{v1.LabelCronJob: cj.Metadata.Name},
			OwnerReferences: []v1.OwnerReference{{Kind: v1.KindCronJob, Name: cj.Metadata.Name, UID: cj.Metadata.UID}},
		},
		Spec: tmpl,
	}
	j.Default()
	return j
}

// reconcileCronJob carries out PlanCronJob and writes the CronJob's status.
func (c *Controller) reconcileCronJob(ctx context.Context, name string) (reconcile.Result, error) {
	o, err := c.cfg.Store.Get(ctx, v1.KindCronJob, name)
	if errors.Is(err, store.ErrNotFound) {
		// Gone: its Jobs go with it (they are owned), running ones stopped by their node.
		return reconcile.Result{}, c.deleteOwned(ctx, name, "")
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get cronjobs/%s: %w", name, err)
	}
	cj := o.DeepCopyObject().(*v1.CronJob)
	cj.Default()
	jobs, err := c.owned(ctx, name, cj.Metadata.UID)
	if err != nil {
		return reconcile.Result{}, err
	}
	now := c.cfg.Clock.Now()
	p, err := PlanCronJob(cj, jobs, now, c.cfg.MaxMissed)
	if err != nil {
		// Validation parses the schedule at apply; a CronJob written by a newer agent may
		// still say what this one cannot read: report it, do not hot-loop.
		setCondition(&cj.Status.Conditions, v1.Condition{Type: v1.CronJobScheduled, Status: v1.ConditionFalse, Reason: v1.ReasonCronInvalidSchedule, Message: err.Error()}, now)
		return reconcile.Result{}, c.writeCronStatus(ctx, o.(*v1.CronJob), cj)
	}
	if !c.cfg.IsLeader() {
		return reconcile.Result{}, nil
	}
	for _, j := range p.Delete {
		if _, err := c.cfg.Store.Delete(ctx, v1.KindJob, j.Metadata.Name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return reconcile.Result{}, fmt.Errorf("delete jobs/%s of cronjobs/%s: %w", j.Metadata.Name, name, err)
		}
		c.log.Info("job deleted", "cronjob", name, "job", j.Metadata.Name, "phase", j.Status.Phase)
	}
	if p.Create != nil {
		if _, err := c.cfg.Store.Create(ctx, p.Create); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return reconcile.Result{}, fmt.Errorf("create jobs/%s for cronjobs/%s: %w", p.Create.Metadata.Name, name, err)
		}
		c.created.Inc()
		c.log.Info("job created", "cronjob", name, "job", p.Create.Metadata.Name, "scheduled", p.Due)
	}
	if p.Skip != "" {
		c.skipped.WithLabelValues(p.Skip).Inc()
		c.log.Info("cronjob run skipped", "cronjob", name, "scheduled", p.Due, "reason", p.Skip)
	}
	cj.Status.ObservedGeneration = cj.Metadata.Generation
	cj.Status.Active = p.Active
	if !p.Due.IsZero() {
		due := p.Due.UTC()
		cj.Status.LastScheduleTime = &due
	}
	if p.LastSuccessful != nil {
		cj.Status.LastSuccessfulTime = p.LastSuccessful
	}
	msg := "next run " + p.Next.UTC().Format(time.RFC3339)
	reason := v1.ReasonCronScheduled
	if cj.Spec.Suspend {
		msg, reason = "suspended", v1.ReasonCronSuspended
	}
	setCondition(&cj.Status.Conditions, v1.Condition{Type: v1.CronJobScheduled, Status: v1.ConditionTrue, Reason: reason, Message: msg}, now)
	if err := c.writeCronStatus(ctx, o.(*v1.CronJob), cj); err != nil {
		return reconcile.Result{}, err
	}
	if p.Next.IsZero() {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: max(p.Next.Sub(now), time.Second)}, nil
}

// writeCronStatus writes cj's status when it differs from old's.
func (c *Controller) writeCronStatus(ctx context.Context, old, cj *v1.CronJob) error {
	if !c.cfg.IsLeader() || statusEqual(old.Status, cj.Status) {
		return nil
	}
	out := old.DeepCopyObject().(*v1.CronJob)
	out.Status = cj.Status
	if _, err := c.cfg.Store.UpdateStatus(ctx, out); err != nil {
		return fmt.Errorf("write status of cronjobs/%s: %w", cj.Metadata.Name, err)
	}
	return nil
}

func statusEqual(a, b v1.CronJobStatus) bool {
	x, _ := jsonMarshal(a)
	y, _ := jsonMarshal(b)
	return string(x) == string(y)
}

// owned lists the Jobs of CronJob name (its label and, when uid is set, its owner uid: a
// CronJob deleted and created again does not adopt the old one's Jobs).
func (c *Controller) owned(ctx context.Context, name, uid string) ([]*v1.Job, error) {
	objs, _, err := c.cfg.Store.List(ctx, v1.KindJob, v1.SelectorFromMap(map[string]string{v1.LabelCronJob: name}))
	if err != nil {
		return nil, fmt.Errorf("list jobs of cronjobs/%s: %w", name, err)
	}
	out := make([]*v1.Job, 0, len(objs))
	for _, o := range objs {
		j := o.(*v1.Job)
		if ownedBy(j, name, uid) {
			out = append(out, j)
		}
	}
	return out, nil
}

func ownedBy(j *v1.Job, name, uid string) bool {
	for _, r := range j.Metadata.OwnerReferences {
		if r.Kind == v1.KindCronJob && r.Name == name && (uid == "" || r.UID == "" || r.UID == uid) {
			return true
		}
	}
	return false
}

// deleteOwned deletes the Jobs of a CronJob that is gone.
func (c *Controller) deleteOwned(ctx context.Context, name, uid string) error {
	if !c.cfg.IsLeader() {
		return nil
	}
	jobs, err := c.owned(ctx, name, uid)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if _, err := c.cfg.Store.Delete(ctx, v1.KindJob, j.Metadata.Name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete jobs/%s of deleted cronjobs/%s: %w", j.Metadata.Name, name, err)
		}
	}
	return nil
}
