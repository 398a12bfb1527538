// Starting one attempt of a Job: its container (host access, env secrets, files) and the wait
// for a place or a secret; the scrubber that keeps secret values out of its logs.

package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/redact"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// start creates and starts attempt n of j.
func (r *Runner) start(ctx context.Context, j, st *v1.Job, n int32, now time.Time, requeue time.Duration) (reconcile.Result, error) {
	name := j.Metadata.Name
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name}, Spec: j.Spec.ServiceSpec()}
	svc.Default()
	if errs := r.cfg.HostAccess.Check(&svc.Spec); len(errs) > 0 {
		r.finish(st, v1.JobFailed, v1.ReasonHostAccessDenied, errs.ToAggregate("jobs", name).Error(), now)
		return reconcile.Result{}, r.writeStatus(ctx, j, st)
	}
	hash := spechash.Of(&svc.Spec)
	stop := r.cfg.StopTimeout
	if g := j.Spec.StopGracePeriod; g != nil {
		stop = g.Duration
	}
	cfg, err := docker.BuildCreateConfig(svc, 0, hash, docker.BuildOptions{
		Node: r.cfg.Node, NamePrefix: r.cfg.NamePrefix, StopTimeoutSeconds: int(stop / time.Second),
		Secret:  func(n, k string) (string, error) { return r.secret(ctx, n, k) },
		MeshDNS: r.cfg.MeshDNS, MeshDomain: r.cfg.MeshDomain,
	})
	if err != nil {
		return r.pending(ctx, j, st, fmt.Errorf("attempt %d: %w", n, err), now)
	}
	files, err := docker.ResolveFiles(ctx, r.cfg.Store, "spec.files", svc.Spec.Files)
	if err != nil {
		return r.pending(ctx, j, st, err, now)
	}
	// A Job container is not a replica: no constellation.service, so that the node
	// reconciler never sees it (doc.go).
	delete(cfg.Config.Labels, docker.LabelService)
	delete(cfg.Config.Labels, docker.LabelReplica)
	cfg.Config.Labels[docker.LabelJob] = name
	cfg.Config.Labels[docker.LabelJobAttempt] = strconv.Itoa(int(n))
	cfg.Config.Hostname = name
	cfg.Name = fmt.Sprintf("%sjob-%s-%d", r.cfg.NamePrefix, name, n)
	for _, nw := range svc.Spec.Networks {
		if err := r.cfg.Docker.EnsureNetwork(ctx, nw); err != nil {
			return reconcile.Result{}, fmt.Errorf("jobs/%s: network %s: %w", name, nw, err)
		}
	}
	for _, v := range svc.Spec.Volumes {
		if !v.IsBindMount() {
			if err := r.cfg.Docker.EnsureVolume(ctx, v.Source); err != nil {
				return reconcile.Result{}, fmt.Errorf("jobs/%s: volume %s: %w", name, v.Source, err)
			}
		}
	}
	if ok, err := r.cfg.Docker.HasImage(ctx, svc.Spec.Image); err != nil {
		return reconcile.Result{}, fmt.Errorf("jobs/%s: image %s: %w", name, svc.Spec.Image, err)
	} else if !ok {
		r.log.Info("pulling job image", "job", name, "image", svc.Spec.Image)
		if err := r.cfg.Docker.PullImage(ctx, svc.Spec.Image, nil); err != nil {
			return r.pending(ctx, j, st, fmt.Errorf("pull %s: %w", svc.Spec.Image, err), now)
		}
	}
	id, err := r.cfg.Docker.Create(ctx, cfg)
	if errors.Is(err, docker.ErrNameConflict) {
		cfg.Name += "-" + strconv.FormatInt(now.UnixNano()%1e6, 36)
		id, err = r.cfg.Docker.Create(ctx, cfg)
	}
	if err != nil {
		if id != "" {
			_ = r.cfg.Docker.Remove(ctx, id)
		}
		return r.pending(ctx, j, st, fmt.Errorf("create attempt %d: %w", n, err), now)
	}
	if err := r.cfg.Docker.CopyFiles(ctx, id, files); err != nil {
		_ = r.cfg.Docker.Remove(ctx, id) // never started without its files
		return r.pending(ctx, j, st, fmt.Errorf("copy files of attempt %d: %w", n, err), now)
	}
	if err := r.cfg.Docker.Start(ctx, id); err != nil {
		_ = r.cfg.Docker.Remove(ctx, id)
		return r.pending(ctx, j, st, fmt.Errorf("start attempt %d: %w", n, err), now)
	}
	st.Status.Attempts = n
	st.Status.ContainerID = id
	st.Status.Phase = v1.JobRunning
	if st.Status.StartTime == nil {
		t := now.UTC()
		st.Status.StartTime = &t
	}
	st.Status.Message = fmt.Sprintf("attempt %d started", n)
	setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: v1.ReasonJobRunning, Message: st.Status.Message}, now)
	r.log.Info("job attempt started", "job", name, "attempt", n, "container", id)
	if err := r.writeStatus(ctx, j, st); err != nil {
		return reconcile.Result{}, err
	}
	if d := j.Spec.ActiveDeadline; d != nil && requeue <= 0 {
		requeue = d.Duration
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// pending reports why the next attempt cannot start yet (a missing Secret, an image that
// does not pull, a create error) and retries with the loop's backoff. It is not an attempt.
func (r *Runner) pending(ctx context.Context, j, st *v1.Job, cause error, now time.Time) (reconcile.Result, error) {
	msg := cause.Error()
	if st.Status.Attempts == 0 {
		st.Status.Phase = v1.JobPending
	}
	st.Status.Message = msg
	reason := v1.ReasonJobCreateFailed
	if errors.Is(cause, docker.ErrSecretNotFound) {
		reason = v1.ReasonSecretNotFound
	} else if errors.Is(cause, docker.ErrFileSourceNotFound) {
		reason = v1.ReasonFileSourceNotFound
	} else if errors.Is(cause, docker.ErrImageNotFound) {
		reason = v1.ReasonImageNotFound
	}
	setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: reason, Message: msg}, now)
	if err := r.writeStatus(ctx, j, st); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, fmt.Errorf("jobs/%s: %w", j.Metadata.Name, cause)
}

// scrubber scrubs the values of every Secret j's env and files reference (every key of each).
func (r *Runner) scrubber(ctx context.Context, j *v1.Job) *redact.Scrubber {
	var values []string
	seen := map[string]bool{}
	var names []string
	for _, e := range j.Spec.Env {
		if e.SecretRef != nil {
			names = append(names, e.SecretRef.Name)
		}
	}
	for _, f := range j.Spec.Files {
		if f.Secret != "" {
			names = append(names, f.Secret)
		}
	}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		if o, err := r.cfg.Store.Get(ctx, v1.KindSecret, name, store.Stale()); err == nil {
			if sec, ok := o.(*v1.Secret); ok {
				for _, v := range sec.Spec.Data {
					values = append(values, v)
				}
			}
		}
	}
	return redact.New(values...)
}

func (r *Runner) secret(ctx context.Context, name, key string) (string, error) {
	v, ok, err := store.SecretValue(ctx, r.cfg.Store, name, key)
	if err == nil && !ok {
		err = docker.ErrSecretNotFound
	}
	return v, err
}
