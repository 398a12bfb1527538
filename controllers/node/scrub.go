package node

import (
	"context"
	"errors"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// refreshScrubber reads the Secrets service name references (env secretRefs of its current spec
// and of the revisions its old replicas may still run) and makes their values, every key of
// each, the ones scrubbed from what this node publishes about the service: a crashing container
// that prints its password must not put it in Service status, gossip or `ctl describe`. A Secret
// that cannot be read now, or that changed or was deleted, keeps the values known before: a
// container started with an old value may still print it. They are forgotten with the service.
func (r *Reconciler) refreshScrubber(ctx context.Context, name string, svc *v1.Service) {
	if svc == nil {
		return // gone: keep what we had while its containers are removed
	}
	names := map[string]bool{}
	specs := []*v1.ServiceSpec{&svc.Spec}
	for _, rev := range []*v1.ServiceRevision{svc.Status.CurrentRevision, svc.Status.PreviousRevision} {
		if rev != nil {
			specs = append(specs, &rev.Spec)
		}
	}
	for _, sp := range specs {
		for _, e := range sp.Env {
			if e.SecretRef != nil {
				names[e.SecretRef.Name] = true
			}
		}
		for _, f := range sp.Files {
			if f.Secret != "" {
				names[f.Secret] = true
			}
		}
	}
	var values []string
	for n := range names {
		o, err := r.cfg.Store.Get(ctx, v1.KindSecret, n, store.Stale())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			r.log.Warn("read secret to scrub status messages, keeping the values known", "service", name, "secret", n, "err", err)
			continue
		}
		sec, ok := o.(*v1.Secret)
		if !ok {
			continue
		}
		for _, v := range sec.Spec.Data {
			values = append(values, v)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Values seen before are kept: a container started with an old value may still print it.
	r.scrubbers[name] = r.scrubbers[name].With(values...)
}
