package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Docker is the part of the engine the Runner uses; *docker.Client implements it.
type Docker interface {
	docker.Engine
	// CopyFiles puts spec.files into a created container (docs/spec.md, "files").
	CopyFiles(ctx context.Context, id string, files []docker.File) error
}

var _ Docker = (*docker.Client)(nil)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Node is this node's name. Required.
	Node string
	// Store holds Jobs and the Secrets their env reads. Required.
	Store Store
	// Docker is the engine. Required.
	Docker Docker
	// HostAccess is this agent's host-access policy, checked before every container is
	// created (as the node reconciler does). Default: the zero Policy with Node set.
	HostAccess hostaccess.Policy
	// NamePrefix goes before container names (tests use a per-run prefix). Default "".
	NamePrefix string
	// MeshDNS and MeshDomain make Job containers resolve through the mesh, like replicas.
	// Default "": Docker's resolvers.
	MeshDNS, MeshDomain string
	// Clock is the time backoff and deadlines are measured on, and times the loop's delays,
	// the resync and the event stream's reconnect. Default clock.RealClock{}.
	Clock clock.WithTicker
	// BackoffBase is the delay before the second attempt, doubled for each further one, at
	// most BackoffMax. Default 10s and 5m (Kubernetes' Job backoff).
	BackoffBase, BackoffMax time.Duration
	// StopTimeout before SIGKILL when a Job is stopped (deadline, deleted, replaced).
	// Default 10s, or the spec's stopGracePeriod.
	StopTimeout time.Duration
	// Resync re-reconciles every Job this often. Default 30s.
	Resync time.Duration
	// LogLines of the last failed attempt's output are kept in status.message. Default 20.
	LogLines int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
}

func (c *RunnerConfig) validate() error {
	switch {
	case c.Node == "":
		return errors.New("job runner: config: Node is required")
	case c.Store == nil:
		return errors.New("job runner: config: Store is required")
	case c.Docker == nil:
		return errors.New("job runner: config: Docker is required")
	}
	if c.HostAccess.Node == "" {
		c.HostAccess.Node = c.Node
	}
	if c.HostAccess.Resolve == nil {
		c.HostAccess.Resolve = filepath.EvalSymlinks
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 10 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	if c.LogLines <= 0 {
		c.LogLines = 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Runner runs the Jobs placed on its node (status.node): one container per attempt.
type Runner struct {
	cfg      RunnerConfig
	log      *slog.Logger
	outcomes *prometheus.CounterVec
}

var _ reconcile.TypedReconciler[string] = (*Runner)(nil)

// NewRunner returns a Runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, log: cfg.Logger.With("controller", "job-runner", "node", cfg.Node),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_job_attempts_total", Help: "Job attempts run on this node, by outcome (succeeded, failed, deadline, stopped).",
		}, []string{"outcome"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.outcomes); err != nil {
			return nil, fmt.Errorf("job runner: register metrics: %w", err)
		}
	}
	return r, nil
}

// Run reconciles this node's Jobs until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	loop := ctrl.New[string]("job-runner", r, ctrl.Options{Logger: r.cfg.Logger, Metrics: r.cfg.LoopMetrics, MaxDelay: 30 * time.Second, Clock: r.cfg.Clock})
	go ctrl.ListWatch(ctx, r.cfg.Store, v1.KindJob, r.log, func(ev store.Event) { loop.Enqueue(ev.Object.GetMetadata().Name) })
	go r.watchEvents(ctx, loop)
	go func() {
		t := r.cfg.Clock.NewTicker(r.cfg.Resync)
		defer t.Stop()
		for {
			r.enqueueContainers(ctx, loop)
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
		}
	}()
	loop.Run(ctx)
}

// enqueueContainers enqueues the Jobs of this node's Job containers, so that the containers of
// a Job deleted while the agent was down are removed.
func (r *Runner) enqueueContainers(ctx context.Context, loop *ctrl.Loop[string]) {
	cs, err := r.cfg.Docker.List(ctx, map[string]string{docker.LabelNode: r.cfg.Node})
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("list job containers", "err", err)
		}
		return
	}
	for _, c := range cs {
		if j := c.Labels[docker.LabelJob]; j != "" {
			loop.Enqueue(j)
		}
	}
}

func (r *Runner) watchEvents(ctx context.Context, loop *ctrl.Loop[string]) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, errc := r.cfg.Docker.Events(ctx, map[string]string{docker.LabelNode: r.cfg.Node})
		for ev := range evs {
			if j := ev.Labels[docker.LabelJob]; j != "" && !strings.HasPrefix(ev.Action, "exec_") {
				loop.Enqueue(j)
			}
		}
		<-errc
		select {
		case <-ctx.Done():
			return
		case <-r.cfg.Clock.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
		r.enqueueContainers(ctx, loop)
	}
}

// attempt is one container of a Job.
type attempt struct {
	n int32
	c docker.Container
}

// Reconcile converges one Job's containers on this node.
func (r *Runner) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	cs, err := r.cfg.Docker.List(ctx, map[string]string{docker.LabelJob: name, docker.LabelNode: r.cfg.Node})
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("list containers of jobs/%s: %w", name, err)
	}
	var atts []attempt
	for _, c := range cs {
		if c.Labels[docker.LabelJob] != name || c.Labels[docker.LabelNode] != r.cfg.Node {
			continue // never touch what is not ours
		}
		n, _ := strconv.Atoi(c.Labels[docker.LabelJobAttempt])
		atts = append(atts, attempt{n: int32(n), c: c})
	}
	sort.Slice(atts, func(a, b int) bool { return atts[a].n > atts[b].n })

	// The local replica of the store: running a Job must not need quorum.
	o, err := r.cfg.Store.Get(ctx, v1.KindJob, name, store.Stale())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return reconcile.Result{}, fmt.Errorf("get jobs/%s: %w", name, err)
	}
	var j *v1.Job
	if err == nil {
		j = o.(*v1.Job)
	}
	if j == nil || j.Status.Node != r.cfg.Node || j.Metadata.DeletionTimestamp != nil {
		// Deleted (by its owner's Replace or history, or by hand) or placed elsewhere: stop.
		return reconcile.Result{}, r.removeAll(ctx, name, j, atts, "stopped")
	}
	if j.Status.Finished() {
		// Reported: the containers go (the last failed attempt's output is in status.message).
		return reconcile.Result{}, r.removeAll(ctx, name, j, atts, "")
	}
	// Older attempts than the current one are leftovers of a pass cut short.
	for _, a := range atts[min(1, len(atts)):] {
		if err := r.remove(ctx, j, a.c); err != nil {
			return reconcile.Result{}, err
		}
	}
	now := r.cfg.Clock.Now()
	limit := int32(v1.DefaultBackoffLimit)
	if j.Spec.BackoffLimit != nil {
		limit = *j.Spec.BackoffLimit
	}
	st := j.DeepCopyObject().(*v1.Job)
	st.Status.ObservedGeneration = j.Metadata.Generation

	if d := j.Spec.ActiveDeadline; d != nil && j.Status.StartTime != nil && !now.Before(j.Status.StartTime.Add(d.Duration)) {
		r.finish(st, v1.JobFailed, v1.ReasonDeadlineExceeded, fmt.Sprintf("active deadline %s passed", d.Duration), now)
		if len(atts) > 0 {
			r.outcomes.WithLabelValues("deadline").Inc()
		}
		if err := r.writeStatus(ctx, j, st); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.removeAll(ctx, name, st, atts, "")
	}
	var requeue time.Duration
	if d := j.Spec.ActiveDeadline; d != nil && j.Status.StartTime != nil {
		requeue = j.Status.StartTime.Add(d.Duration).Sub(now)
	}

	if len(atts) == 0 {
		if st.Status.Attempts > 0 && st.Status.Attempts > limit {
			r.finish(st, v1.JobFailed, v1.ReasonBackoffLimitExceeded, fmt.Sprintf("%d attempts failed (backoffLimit %d)", st.Status.Attempts, limit), now)
			return reconcile.Result{}, r.writeStatus(ctx, j, st)
		}
		return r.start(ctx, j, st, st.Status.Attempts+1, now, requeue)
	}
	cur := atts[0]
	if cur.n > st.Status.Attempts {
		st.Status.Attempts = cur.n // started by a pass whose status write was lost
	}
	st.Status.ContainerID = cur.c.ID
	switch {
	case cur.c.Running || cur.c.State == "restarting" || cur.c.State == "paused":
		st.Status.Phase = v1.JobRunning
		if st.Status.StartTime == nil && !cur.c.StartedAt.IsZero() {
			t := cur.c.StartedAt.UTC()
			st.Status.StartTime = &t
		}
		st.Status.Message = fmt.Sprintf("attempt %d running", cur.n)
		setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: v1.ReasonJobRunning, Message: st.Status.Message}, now)
		return reconcile.Result{RequeueAfter: requeue}, r.writeStatus(ctx, j, st)
	case cur.c.State == "created":
		// Created by a pass cut short before its start.
		if err := r.cfg.Docker.Start(ctx, cur.c.ID); err != nil {
			return reconcile.Result{}, fmt.Errorf("start container of jobs/%s attempt %d: %w", name, cur.n, err)
		}
		return reconcile.Result{RequeueAfter: requeue}, nil
	}
	// Exited (or dead).
	code := int32(cur.c.ExitCode)
	st.Status.ExitCode = &code
	if code == 0 && cur.c.State == "exited" {
		r.finish(st, v1.JobSucceeded, v1.ReasonJobSucceeded, fmt.Sprintf("attempt %d exited 0", cur.n), finishedAt(cur.c, now))
		r.outcomes.WithLabelValues("succeeded").Inc()
		if err := r.writeStatus(ctx, j, st); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.removeAll(ctx, name, st, atts, "")
	}
	why := fmt.Sprintf("attempt %d exited with code %d", cur.n, code)
	if cur.c.OOMKilled {
		why += " (out of memory)"
	}
	if cur.n > limit {
		msg := why + fmt.Sprintf("; %d attempts failed (backoffLimit %d)", cur.n, limit)
		if tail, err := r.cfg.Docker.LogTail(ctx, cur.c.ID, time.Time{}, r.cfg.LogLines); err == nil && strings.TrimSpace(tail) != "" {
			// A crashing job may print the secrets its env holds: status is readable by
			// read tokens, so their values are scrubbed as the node reconciler does.
			msg += ": " + lastBytes(r.scrubber(ctx, j).Scrub(strings.TrimSpace(tail)), 1024)
		}
		r.finish(st, v1.JobFailed, v1.ReasonBackoffLimitExceeded, msg, finishedAt(cur.c, now))
		r.outcomes.WithLabelValues("failed").Inc()
		if err := r.writeStatus(ctx, j, st); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.removeAll(ctx, name, st, atts, "")
	}
	retryAt := finishedAt(cur.c, now).Add(r.backoff(cur.n))
	if now.Before(retryAt) {
		st.Status.Phase = v1.JobRunning
		st.Status.Message = why + ", retrying at " + retryAt.UTC().Format(time.RFC3339)
		setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: v1.ReasonJobBackoffRetry, Message: st.Status.Message}, now)
		wait := retryAt.Sub(now)
		if requeue > 0 {
			wait = min(wait, requeue)
		}
		return reconcile.Result{RequeueAfter: wait}, r.writeStatus(ctx, j, st)
	}
	r.outcomes.WithLabelValues("failed").Inc()
	if err := r.remove(ctx, j, cur.c); err != nil {
		return reconcile.Result{}, err
	}
	return r.start(ctx, j, st, cur.n+1, now, requeue)
}

// backoff is the wait after failed attempt n: BackoffBase·2^(n-1), at most BackoffMax.
func (r *Runner) backoff(n int32) time.Duration {
	d := r.cfg.BackoffBase
	for i := int32(1); i < n && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, r.cfg.BackoffMax)
}

func finishedAt(c docker.Container, now time.Time) time.Time {
	if c.FinishedAt.IsZero() || c.FinishedAt.Year() < 2000 {
		return now
	}
	return c.FinishedAt
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func (r *Runner) finish(st *v1.Job, phase v1.JobPhase, reason v1.ConditionReason, msg string, at time.Time) {
	st.Status.Phase = phase
	st.Status.Message = msg
	t := at.UTC()
	st.Status.CompletionTime = &t
	now := r.cfg.Clock.Now()
	if phase == v1.JobSucceeded {
		setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionTrue, Reason: reason, Message: msg}, now)
	} else {
		setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: reason, Message: msg}, now)
		setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobFailedCondition, Status: v1.ConditionTrue, Reason: reason, Message: msg}, now)
	}
	r.log.Info("job finished", "job", st.Metadata.Name, "phase", phase, "reason", reason, "attempts", st.Status.Attempts)
}

// writeStatus writes st's status when it differs from j's (compare-and-swap on j's
// resourceVersion: a conflict is retried by the loop).
func (r *Runner) writeStatus(ctx context.Context, j, st *v1.Job) error {
	a, _ := jsonMarshal(j.Status)
	b, _ := jsonMarshal(st.Status)
	if string(a) == string(b) {
		return nil
	}
	if _, err := r.cfg.Store.UpdateStatus(ctx, st); err != nil {
		return fmt.Errorf("write status of jobs/%s: %w", j.Metadata.Name, err)
	}
	return nil
}

func (r *Runner) remove(ctx context.Context, j *v1.Job, c docker.Container) error {
	if c.Running {
		stop := r.cfg.StopTimeout
		if j != nil && j.Spec.StopGracePeriod != nil {
			stop = j.Spec.StopGracePeriod.Duration
		}
		if err := r.cfg.Docker.Stop(ctx, c.ID, stop); err != nil && !errors.Is(err, docker.ErrNotFound) {
			return fmt.Errorf("stop job container %s: %w", c.Name, err)
		}
	}
	if err := r.cfg.Docker.Remove(ctx, c.ID); err != nil {
		return fmt.Errorf("remove job container %s: %w", c.Name, err)
	}
	return nil
}

func (r *Runner) removeAll(ctx context.Context, name string, j *v1.Job, atts []attempt, outcome string) error {
	for _, a := range atts {
		if outcome != "" && a.c.Running {
			r.outcomes.WithLabelValues(outcome).Inc()
			r.log.Info("stopping job container", "job", name, "attempt", a.n, "container", a.c.ID)
		}
		if err := r.remove(ctx, j, a.c); err != nil {
			return err
		}
	}
	return nil
}
