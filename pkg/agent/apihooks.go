package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/traefik"
)

// ready is /readyz: the store answers and the Traefik provider has a configuration.
func (a *Agent) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := a.store.Revision(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := a.provider.Ready(); err != nil {
		return err
	}
	return nil
}

// admit runs the cross-object checks of the API server.
func (a *Agent) admit(ctx context.Context, obj v1.Object) v1.ErrorList {
	if e := a.admitLevel(ctx, obj); e != nil { // mixed versions during an upgrade (upgrade.go)
		return v1.ErrorList{e}
	}
	sec := a.admitSecurity(ctx, obj) // host access and basic-auth hashes (hostaccess.go)
	svc, ok := obj.(*v1.Service)
	if !ok {
		return sec
	}
	objs, _, err := a.store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return v1.ErrorList{{Field: "metadata.name", Message: "cannot check route conflicts: " + err.Error()}}
	}
	others := make([]*v1.Service, 0, len(objs))
	for _, o := range objs {
		if o.GetMetadata().Name != svc.Metadata.Name {
			others = append(others, o.(*v1.Service))
		}
	}
	errs := append(sec, traefik.AdmitService(svc, others)...)
	// dependsOn cycles against what is stored (ctl apply checks the rest of its batch first).
	if e := v1.DependencyCycle(svc, others); e != nil {
		errs = append(errs, e)
	}
	return errs
}

func (a *Agent) serveObserved(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Nodes    []observed.Node    `json:"nodes"`
		Replicas []observed.Replica `json:"replicas"`
	}{a.view.Nodes(), a.view.Replicas()})
}

// raftRole is the status controller's view of each node's role in the store.
func (a *Agent) raftRole(node string) (v1.RaftRole, bool) {
	if a.raft != nil {
		return a.raftRoleOf(node)
	}
	if a.cfg.Store.Memory {
		if node == a.cfg.Node.Name {
			return v1.RaftLeader, true
		}
		return v1.RaftNone, true
	}
	return "", false
}
