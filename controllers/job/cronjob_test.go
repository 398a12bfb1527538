package job

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// t0 is a Monday, 10:00 UTC.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	st  *store.Memory
	clk *clocktesting.FakeClock
	c   *Controller
}

func newFixture(t *testing.T) *fixture {
	clk := clocktesting.NewFakeClock(t0)
	st := store.NewMemory(store.MemoryConfig{Clock: clk})
	c, err := NewController(ControllerConfig{Store: st, Clock: clk, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, clk: clk, c: c}
}

func (f *fixture) cron(name, schedule string, mut func(*v1.CronJob)) {
	f.t.Helper()
	cj := &v1.CronJob{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.CronJobSpec{Schedule: schedule, JobTemplate: v1.JobSpec{Image: "job:test"}}}
	if mut != nil {
		mut(cj)
	}
	cj.Default()
	if errs := cj.Validate(); len(errs) > 0 {
		f.t.Fatal(errs)
	}
	if _, err := f.st.Create(context.Background(), cj); err != nil {
		f.t.Fatal(err)
	}
}

// at steps the clock to t0+d and reconciles the CronJob.
func (f *fixture) at(d time.Duration, name string) time.Duration {
	f.t.Helper()
	f.clk.SetTime(t0.Add(d))
	res, err := f.c.Reconcile(context.Background(), "cronjob/"+name)
	if err != nil {
		f.t.Fatalf("reconcile at +%s: %v", d, err)
	}
	return res.RequeueAfter
}

func (f *fixture) jobs() []*v1.Job {
	objs, _, err := f.st.List(context.Background(), v1.KindJob, v1.Selector{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*v1.Job
	for _, o := range objs {
		out = append(out, o.(*v1.Job))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Metadata.Name < out[b].Metadata.Name })
	return out
}

func (f *fixture) names() []string {
	var out []string
	for _, j := range f.jobs() {
		out = append(out, j.Metadata.Name)
	}
	return out
}

// finish sets a Job's phase as its node would.
func (f *fixture) finish(name string, phase v1.JobPhase, d time.Duration) {
	f.t.Helper()
	o, err := f.st.Get(context.Background(), v1.KindJob, name)
	if err != nil {
		f.t.Fatal(err)
	}
	j := o.(*v1.Job)
	j.Status.Phase = phase
	t := t0.Add(d)
	j.Status.CompletionTime = &t
	if _, err := f.st.UpdateStatus(context.Background(), j); err != nil {
		f.t.Fatal(err)
	}
}

func minute(d time.Duration) string { return JobName("c", t0.Add(d)) }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCronJobCreatesJobsOnSchedule(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "*/5 * * * *", nil)
	if wait := f.at(0, "c"); wait != 5*time.Minute {
		t.Fatalf("requeue after %s, want 5m (the next run)", wait)
	}
	if n := f.names(); len(n) != 0 {
		t.Fatalf("a run before the first scheduled time: %v", n)
	}
	f.at(4*time.Minute+59*time.Second, "c")
	if n := f.names(); len(n) != 0 {
		t.Fatalf("a run before it is due: %v", n)
	}
	f.at(5*time.Minute, "c")
	f.at(5*time.Minute+10*time.Second, "c") // again: idempotent
	want := []string{minute(5 * time.Minute)}
	if n := f.names(); !equal(n, want) {
		t.Fatalf("jobs %v, want %v", n, want)
	}
	j := f.jobs()[0]
	if j.Metadata.Labels[v1.LabelCronJob] != "c" || len(j.Metadata.OwnerReferences) != 1 || j.Metadata.OwnerReferences[0].Kind != v1.KindCronJob || j.Spec.Image != "job:test" {
		t.Fatalf("created job %+v", j.Metadata)
	}
	o, _ := f.st.Get(context.Background(), v1.KindCronJob, "c")
	cj := o.(*v1.CronJob)
	if cj.Status.LastScheduleTime == nil || !cj.Status.LastScheduleTime.Equal(t0.Add(5*time.Minute)) || !equal(cj.Status.Active, want) {
		t.Fatalf("status %+v", cj.Status)
	}
	// Down for an hour: one run, the latest missed one, not twelve.
	f.at(65*time.Minute+30*time.Second, "c")
	want = append(want, minute(65*time.Minute))
	if n := f.names(); !equal(n, want) {
		t.Fatalf("after an hour down: jobs %v, want %v", n, want)
	}
}

func TestCronJobForbidSkipsWhileRunning(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "*/5 * * * *", func(c *v1.CronJob) { c.Spec.ConcurrencyPolicy = v1.ConcurrencyForbid })
	f.at(5*time.Minute, "c")
	f.at(10*time.Minute, "c") // the first one still runs: skipped
	if n := f.names(); !equal(n, []string{minute(5 * time.Minute)}) {
		t.Fatalf("jobs %v, want only the first", n)
	}
	f.at(11*time.Minute, "c") // the skipped run is not started late
	if n := f.names(); len(n) != 1 {
		t.Fatalf("the skipped run started late: %v", n)
	}
	f.finish(minute(5*time.Minute), v1.JobSucceeded, 12*time.Minute)
	f.at(15*time.Minute, "c")
	if n := f.names(); !equal(n, []string{minute(15 * time.Minute), minute(5 * time.Minute)}) && !equal(n, []string{minute(5 * time.Minute), minute(15 * time.Minute)}) {
		t.Fatalf("jobs %v, want the first and the 15-minute run", n)
	}
}

func TestCronJobReplaceStopsTheActiveJob(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "*/5 * * * *", func(c *v1.CronJob) { c.Spec.ConcurrencyPolicy = v1.ConcurrencyReplace })
	f.at(5*time.Minute, "c")
	f.at(10*time.Minute, "c")
	// The active Job is deleted (its node stops its container) and the new one created.
	if n := f.names(); !equal(n, []string{minute(10 * time.Minute)}) {
		t.Fatalf("jobs %v, want only the replacement", n)
	}
}

func TestCronJobAllowOverlaps(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "*/5 * * * *", nil)
	f.at(5*time.Minute, "c")
	f.at(10*time.Minute, "c")
	if n := f.names(); len(n) != 2 {
		t.Fatalf("jobs %v, want two running side by side", n)
	}
}

func TestCronJobPrunesHistory(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "* * * * *", func(c *v1.CronJob) {
		two := int32(2)
		c.Spec.SuccessfulJobsHistoryLimit = &two
	})
	var made []string
	for i := 1; i <= 6; i++ {
		d := time.Duration(i) * time.Minute
		f.at(d, "c")
		made = append(made, minute(d))
		phase := v1.JobSucceeded
		if i == 2 || i == 4 {
			phase = v1.JobFailed
		}
		f.finish(minute(d), phase, d+30*time.Second)
	}
	f.at(6*time.Minute+40*time.Second, "c")
	// Succeeded: 1, 3, 5, 6 → keep the newest 2 (5, 6); failed: 2, 4 → keep 1 (4).
	want := []string{made[3], made[4], made[5]}
	sort.Strings(want)
	if n := f.names(); !equal(n, want) {
		t.Fatalf("jobs after pruning %v, want %v", n, want)
	}
	o, _ := f.st.Get(context.Background(), v1.KindCronJob, "c")
	if cj := o.(*v1.CronJob); cj.Status.LastSuccessfulTime == nil || !cj.Status.LastSuccessfulTime.Equal(t0.Add(6*time.Minute+30*time.Second)) || len(cj.Status.Active) != 0 {
		t.Fatalf("status %+v", cj.Status)
	}
}

func TestCronJobStartingDeadlineAndSuspend(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "0 * * * *", func(c *v1.CronJob) { c.Spec.StartingDeadline = &v1.Duration{Duration: time.Minute} })
	f.at(62*time.Minute, "c") // 11:00 missed by 2 minutes: skipped
	if n := f.names(); len(n) != 0 {
		t.Fatalf("a run past its starting deadline started: %v", n)
	}
	f.at(120*time.Minute+30*time.Second, "c")
	if n := f.names(); len(n) != 1 {
		t.Fatalf("jobs %v, want the 12:00 run", n)
	}
	o, _ := f.st.Get(context.Background(), v1.KindCronJob, "c")
	cj := o.(*v1.CronJob)
	cj.Spec.Suspend = true
	if _, err := f.st.Update(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	if wait := f.at(180*time.Minute, "c"); wait != 0 {
		t.Fatalf("a suspended CronJob requeues after %s", wait)
	}
	if n := f.names(); len(n) != 1 {
		t.Fatalf("a suspended CronJob created %v", n)
	}
}

func TestCronJobTimeZone(t *testing.T) {
	f := newFixture(t)
	// 12:00 in Paris is 11:00 UTC in March (CET, UTC+1).
	f.cron("c", "0 12 * * *", func(c *v1.CronJob) { c.Spec.TimeZone = "Europe/Paris" })
	f.at(59*time.Minute, "c")
	if n := f.names(); len(n) != 0 {
		t.Fatalf("ran at 10:59 UTC: %v", n)
	}
	f.at(60*time.Minute, "c")
	if n := f.names(); !equal(n, []string{minute(60 * time.Minute)}) {
		t.Fatalf("jobs %v, want the run of 11:00 UTC", n)
	}
}

func TestDeletedCronJobDeletesItsJobs(t *testing.T) {
	f := newFixture(t)
	f.cron("c", "*/5 * * * *", nil)
	f.at(5*time.Minute, "c")
	if _, err := f.st.Delete(context.Background(), v1.KindCronJob, "c", ""); err != nil {
		t.Fatal(err)
	}
	f.at(6*time.Minute, "c")
	if n := f.names(); len(n) != 0 {
		t.Fatalf("jobs of a deleted CronJob remain: %v", n)
	}
}

func TestPickNode(t *testing.T) {
	ready := func(name string, labels map[string]string, ok bool) *v1.Node {
		st := v1.ConditionFalse
		if ok {
			st = v1.ConditionTrue
		}
		return &v1.Node{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{Labels: labels},
			Status: v1.NodeStatus{Conditions: []v1.Condition{{Type: v1.NodeReady, Status: st}}}}
	}
	nodes := map[string]*v1.Node{
		"a": ready("a", nil, true), "b": ready("b", map[string]string{"disk": "ssd"}, true),
		"c": ready("c", map[string]string{"disk": "ssd"}, false), "d": ready("d", map[string]string{"disk": "ssd"}, true),
	}
	nodes["d"].Spec.Unschedulable = true
	j := &v1.Job{}
	if got := PickNode(j, nodes, map[string]int{"a": 2}); got != "b" {
		t.Fatalf("least loaded: %q, want b", got)
	}
	j.Spec.Placement = &v1.JobPlacement{NodeSelector: map[string]string{"disk": "ssd"}}
	if got := PickNode(j, nodes, map[string]int{"b": 5}); got != "b" {
		t.Fatalf("selector (c not Ready, d cordoned): %q, want b", got)
	}
	j.Spec.Placement.NodeSelector["disk"] = "nvme"
	if got := PickNode(j, nodes, nil); got != "" {
		t.Fatalf("no match: %q", got)
	}
}

func TestJobPlacedAndReplacedBeforeItStarts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		node := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: n}}
		if _, err := f.st.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
		o, _ := f.st.Get(ctx, v1.KindNode, n)
		node = o.(*v1.Node)
		node.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
		if _, err := f.st.UpdateStatus(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	j := &v1.Job{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindJob}, Metadata: v1.ObjectMeta{Name: "once"}, Spec: v1.JobSpec{Image: "x"}}
	if _, err := f.st.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "job/once"); err != nil {
		t.Fatal(err)
	}
	get := func() *v1.Job { o, _ := f.st.Get(ctx, v1.KindJob, "once"); return o.(*v1.Job) }
	if got := get(); got.Status.Node != "a" || got.Status.Phase != v1.JobPending {
		t.Fatalf("placed %+v", got.Status)
	}
	// Node a goes away before it starts the Job: b takes it.
	if _, err := f.st.Delete(ctx, v1.KindNode, "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "job/once"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.Status.Node != "b" {
		t.Fatalf("after node a left: %+v", got.Status)
	}
	// Once an attempt started, the Job stays where it runs.
	cur := get()
	cur.Status.Attempts, cur.Status.Phase = 1, v1.JobRunning
	if _, err := f.st.UpdateStatus(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Delete(ctx, v1.KindNode, "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "job/once"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.Status.Node != "b" {
		t.Fatalf("a started Job moved: %+v", got.Status)
	}
}
