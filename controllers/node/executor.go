// The Docker executor: carries out the plan's actions (create, start, restart, drain, remove),
// with the image pull and the shared networks and volumes a create needs.

package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

// apply carries out the plan, up to 4 container operations at once. Failures of one replica
// (missing image, port conflict...) are recorded in its state and shown in status; only the
// daemon being unreachable fails the whole pass.
func (r *Reconciler) apply(ctx context.Context, name string, svc *v1.Service, acts []Action, cs []docker.Container, now time.Time) error {
	byID := map[string]docker.Container{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	if svc != nil {
		for _, a := range acts {
			if a.Kind == ActCreate {
				if err := r.ensureShared(ctx, svc, a.SpecHash); err != nil && errors.Is(err, docker.ErrUnavailable) {
					return err
				}
				break
			}
		}
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unavailable error
	for _, a := range acts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := r.do(ctx, name, svc, a, byID[a.ContainerID], now)
			outcome := "ok"
			if err != nil {
				outcome = "error"
				r.log.Warn("container action failed", "service", name, "action", a.Kind, "index", a.Index, "err", err)
			}
			r.actions.WithLabelValues(string(a.Kind), outcome).Inc()
			if errors.Is(err, docker.ErrUnavailable) {
				mu.Lock()
				unavailable = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return unavailable
}

// ensureShared creates the networks and named volumes of the spec with hash.
func (r *Reconciler) ensureShared(ctx context.Context, svc *v1.Service, hash string) error {
	spec, ok := spechash.Lookup(svc, hash)
	if !ok {
		return nil
	}
	for _, n := range spec.Networks {
		if err := r.cfg.Docker.EnsureNetwork(ctx, n); err != nil {
			return err
		}
	}
	for _, v := range spec.Volumes {
		if !strings.HasPrefix(v.Source, "/") {
			if err := r.cfg.Docker.EnsureVolume(ctx, v.Source); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reconciler) do(ctx context.Context, name string, svc *v1.Service, a Action, c docker.Container, now time.Time) error {
	d := r.cfg.Docker
	switch a.Kind {
	case ActCreate:
		if svc == nil {
			return nil
		}
		spec, ok := spechash.Lookup(svc, a.SpecHash)
		if !ok {
			err := fmt.Errorf("spec %s is no longer known to this node", a.SpecHash)
			r.failCreate(name, a.Index, "SpecUnavailable", err, now)
			return err
		}
		s := (&v1.Service{Metadata: svc.Metadata, Spec: *spec}).DeepCopyObject().(*v1.Service)
		s.Default()
		if err := r.hostAccessDenied(name, &s.Spec, a.Index, now); err != nil {
			return err
		}
		cfg, err := docker.BuildCreateConfig(s, a.Index, a.SpecHash, docker.BuildOptions{
			Node: r.cfg.Node, PublishIP: r.cfg.PublishIP, NamePrefix: r.cfg.NamePrefix,
			StopTimeoutSeconds: int(r.cfg.StopTimeout / time.Second),
			Secret:             func(n, k string) (string, error) { return r.cfg.Secret(ctx, n, k) },
			MeshDNS:            r.cfg.MeshDNS, MeshDomain: r.cfg.MeshDomain,
			NetnsOwner: a.NetnsOwner,
		})
		if err != nil {
			r.failCreate(name, a.Index, reasonOf(err), err, now)
			return err
		}
		files, err := docker.ResolveFiles(ctx, r.cfg.Store, "spec.files", s.Spec.Files)
		if err != nil {
			r.failCreate(name, a.Index, reasonOf(err), err, now)
			return err
		}
		if ready, err := r.image(ctx, name, a.Index, s.Spec.Image, now); !ready {
			return err
		}
		id, err := d.Create(ctx, cfg)
		if errors.Is(err, docker.ErrNameConflict) {
			// A container of another node identity (or not ours) holds the name on this
			// engine: never touch it, use another name.
			cfg.Name += "-" + randomSuffix()
			id, err = d.Create(ctx, cfg)
		}
		if err != nil {
			if errors.Is(err, docker.ErrUnavailable) {
				return err
			}
			if id != "" {
				_ = d.Remove(ctx, id)
			}
			r.failCreate(name, a.Index, reasonOf(err), err, now)
			return err
		}
		if err := r.copyFiles(ctx, id, files); err != nil {
			// A container without its files must never start: remove it, try again later.
			_ = d.Remove(ctx, id)
			if !errors.Is(err, docker.ErrUnavailable) {
				r.failCreate(name, a.Index, reasonOf(err), err, now)
			}
			return err
		}
		if err := d.Start(ctx, id); err != nil {
			if !errors.Is(err, docker.ErrUnavailable) {
				// Leave the container: the next pass starts it again after the backoff.
				r.failCreate(name, a.Index, reasonOf(err), err, now)
			}
			return err
		}
		r.clearReason(name, a.Index)
		r.event(name, v1.EventNormal, v1.EventStarted, "replica %d started (image %s)", a.Index, s.Spec.Image)
		return nil
	case ActStart:
		// A container created under other flags (the agent restarted with stricter ones) is not
		// started again; a running one is left alone.
		if spec, ok := specOf(svc, c); ok {
			if err := r.hostAccessDenied(name, spec, a.Index, now); err != nil {
				return err
			}
		}
		if err := d.Start(ctx, a.ContainerID); err != nil {
			if !errors.Is(err, docker.ErrUnavailable) {
				r.failCreate(name, a.Index, reasonOf(err), err, now)
			}
			return err
		}
		r.started(name, a.Index)
		return nil
	case ActRestart:
		r.fail(name, a.Index, v1.ReasonUnhealthy, errors.New("health check failing, restarted"), now)
		st := r.state(name, a.Index)
		r.mu.Lock()
		if st.failures >= r.cfg.CrashLoopThreshold {
			st.reason = v1.ReasonCrashLoop
			st.message = "unhealthy after every restart"
		}
		r.mu.Unlock()
		probe := ""
		if _, msg := r.prober.status(a.ContainerID); msg != "" {
			r.mu.Lock()
			st.message += ": " + msg
			r.mu.Unlock()
			probe = ": " + msg
		}
		r.event(name, v1.EventWarning, v1.EventUnhealthy, "replica %d failed its health check, restarting%s", a.Index, probe)
		if err := d.Stop(ctx, a.ContainerID, r.stopTimeout(svc, c)); err != nil {
			return err
		}
		r.prober.forgetIDs(a.ContainerID)
		return d.Start(ctx, a.ContainerID)
	case ActDrain:
		r.mu.Lock()
		r.draining[a.ContainerID] = drain{service: name, since: now}
		r.mu.Unlock()
		r.log.Info("container no longer belongs here, draining", "service", name, "index", a.Index, "container", a.ContainerID, "for", r.cfg.DrainDelay)
		return nil
	case ActRemove:
		if a.Why != "" {
			r.log.Warn("removing a container sharing a gateway's namespace at once", "service", name, "index", a.Index, "container", shortID(a.ContainerID), "why", a.Why)
			if a.Why == "namespace owner restarted" || a.Why == "namespace owner recreated" {
				r.egress.steps.WithLabelValues(name, "recreate-dependent").Inc()
			}
		}
		if c.Running {
			if err := d.Stop(ctx, a.ContainerID, r.stopTimeout(svc, c)); err != nil && !errors.Is(err, docker.ErrNotFound) {
				return err
			}
		}
		if err := d.Remove(ctx, a.ContainerID); err != nil {
			return err
		}
		r.prober.forgetIDs(a.ContainerID)
		r.mu.Lock()
		delete(r.draining, a.ContainerID)
		r.mu.Unlock()
		return nil
	}
	return nil
}

// hostAccessDenied checks spec against this agent's host-access policy: a refusal is recorded as
// replica idx's failure (HostAccessDenied, naming the field, the node and the flag) and returned.
func (r *Reconciler) hostAccessDenied(name string, spec *v1.ServiceSpec, idx int32, now time.Time) error {
	errs := r.cfg.HostAccess.Check(spec)
	if len(errs) == 0 {
		return nil
	}
	err := errs.ToAggregate("services", name)
	r.failCreate(name, idx, v1.ReasonHostAccessDenied, err, now)
	return err
}

// stopTimeout is how long a stop of container c of svc waits before SIGKILL: the
// spec.stopGracePeriod of the spec it runs, else Config.StopTimeout (also when its Service is
// gone: the agent does not read the container's own config back).
func (r *Reconciler) stopTimeout(svc *v1.Service, c docker.Container) time.Duration {
	if spec, ok := specOf(svc, c); ok && spec.StopGracePeriod != nil {
		return spec.StopGracePeriod.Duration
	}
	return r.cfg.StopTimeout
}

// specOf is the spec container c of svc runs (by its spec-hash label), if still known.
func specOf(svc *v1.Service, c docker.Container) (*v1.ServiceSpec, bool) {
	if svc == nil {
		return nil, false
	}
	return spechash.Lookup(svc, c.Labels[docker.LabelSpecHash])
}

// image reports whether ref is present for replica idx of service name. When it is not, a pull
// runs in the background (one per image, shared by every service waiting for it) and the
// replica is marked ImagePulling with its progress until the pull ends and wakes the service;
// a failed pull is recorded as the replica's failure, once, and backs off like any other.
func (r *Reconciler) image(ctx context.Context, name string, idx int32, ref string, now time.Time) (bool, error) {
	ok, err := r.cfg.Docker.HasImage(ctx, ref)
	if err != nil {
		if !errors.Is(err, docker.ErrUnavailable) {
			r.fail(name, idx, reasonOf(err), err, now)
		}
		return false, err
	}
	st := r.state(name, idx)
	r.mu.Lock()
	waited := st.pulling != ""
	r.mu.Unlock()
	if ok {
		r.mu.Lock()
		st.pulling = ""
		r.mu.Unlock()
		if waited {
			if src := r.sources.get(ref); src.node != "" {
				r.event(name, v1.EventNormal, v1.EventPulled, "pulled image %s from node %s (%.1f MB)", ref, src.node, float64(src.bytes)/1e6)
			} else {
				r.event(name, v1.EventNormal, v1.EventPulled, "pulled image %s", ref)
			}
		}
		return true, nil
	}
	ps := r.puller.request(ref, name)
	r.mu.Lock()
	st.pulling = ""
	r.mu.Unlock()
	if ps.Err != nil {
		if !errors.Is(ps.Err, docker.ErrUnavailable) {
			r.fail(name, idx, reasonOf(ps.Err), ps.Err, now)
			r.event(name, v1.EventWarning, v1.EventFailedPull, "replica %d: %v", idx, ps.Err)
		}
		return false, ps.Err
	}
	if !waited {
		r.event(name, v1.EventNormal, v1.EventPulling, "pulling image %s", ref)
	}
	msg := fmt.Sprintf("pulling image %s for %s", ref, now.Sub(ps.Started).Round(time.Second))
	if src := r.sources.get(ref); src.node != "" {
		msg = fmt.Sprintf("pulling image %s from node %s for %s: %.1f MB", ref, src.node, now.Sub(ps.Started).Round(time.Second), float64(src.bytes)/1e6)
	} else if ps.Progress.Layers > 0 {
		msg += ": " + ps.Progress.String()
	}
	r.mu.Lock()
	st.pulling = msg
	r.mu.Unlock()
	return false, nil
}

func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
