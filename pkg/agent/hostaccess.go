package agent

import (
	"context"
	"errors"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/traefik"
)

// hostAccessPolicy is this agent's --security flags as a policy. The API server checks Services
// with it (without a node name: "this agent", and without resolving symlinks: the Service may
// run on any node); the node reconciler checks again with its own name and file system.
func (a *Agent) hostAccessPolicy() hostaccess.Policy {
	return hostaccess.Policy{
		AllowHostAccess: a.cfg.Security.AllowHostAccess,
		HostPaths:       append([]string(nil), a.cfg.Security.HostPaths...),
		DataDir:         a.cfg.DataDir,
	}
}

// admitSecurity is the security part of admission: a Service's host access against this
// agent's flags and its basic-auth Secrets (those already stored) against the htpasswd hash
// formats; a Secret that a route names for basic auth must hold hashes. Refusals are 422 with
// the field path and the fix; no Secret value is ever quoted.
func (a *Agent) admitSecurity(ctx context.Context, obj v1.Object) v1.ErrorList {
	switch o := obj.(type) {
	case *v1.Service:
		errs := a.hostAccessPolicy().Check(&o.Spec)
		return append(errs, traefik.AdmitBasicAuth(o, func(name string) *v1.Secret {
			so, err := a.store.Get(ctx, v1.KindSecret, name, store.Stale())
			if err != nil {
				// Missing (created later) or unreadable: the renderer checks it again.
				if !errors.Is(err, store.ErrNotFound) {
					a.log.Warn("admission: read basic-auth secret", "service", o.Metadata.Name, "secret", name, "err", err)
				}
				return nil
			}
			s, _ := so.(*v1.Secret)
			return s
		})...)
	case *v1.Secret:
		objs, _, err := a.store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
		if err != nil {
			// The renderer refuses a bad entry anyway; admission only reports it earlier.
			a.log.Warn("admission: list services for basic-auth check", "secret", o.Metadata.Name, "err", err)
			return nil
		}
		svcs := make([]*v1.Service, 0, len(objs))
		for _, so := range objs {
			if s, ok := so.(*v1.Service); ok {
				svcs = append(svcs, s)
			}
		}
		return traefik.AdmitBasicAuthSecret(o, svcs)
	case *v1.Job, *v1.CronJob:
		return a.admitJobHostAccess(o)
	}
	return nil
}
