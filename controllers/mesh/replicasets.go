package mesh

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/ipam"
	"github.com/constellation-sh/constellation/pkg/store"
)

// A ReplicaSet holds one virtual IP, the address of <rs>-primary (status.virtualIP), from the
// same range and table as the Services: its queue key is rsKeyPrefix+name (a Service name is a
// DNS label and never contains '/'), its holder in the table is named the same.
const rsKeyPrefix = "replicaset/"

func replicaSetHolder(rs *v1.ReplicaSet) (ipam.Holder, bool) {
	h := ipam.Holder{Name: rsKeyPrefix + rs.Metadata.Name, UID: rs.Metadata.UID, Held: ipam.Addresses{Replicas: map[int32]netip.Addr{}}}
	if t := rs.Metadata.CreationTimestamp; t != nil {
		h.Created = *t
	}
	bad := false
	if v := rs.Status.VirtualIP; v != "" {
		if a, err := netip.ParseAddr(v); err == nil && a.Is4() {
			h.Held.Service = a
		} else {
			bad = true
		}
	}
	return h, bad
}

// listReplicaSetHolders adds every ReplicaSet's address to a snapshot.
func (c *Controller) listReplicaSetHolders(ctx context.Context, snap map[string]ipam.Holder) error {
	objs, _, err := c.cfg.Store.List(ctx, v1.KindReplicaSet, v1.Selector{})
	if err != nil {
		return fmt.Errorf("list replicasets: %w", err)
	}
	for _, o := range objs {
		h, _ := replicaSetHolder(o.(*v1.ReplicaSet))
		snap[h.Name] = h
	}
	return nil
}

// reconcileReplicaSet makes sure one ReplicaSet holds its virtual IP.
func (c *Controller) reconcileReplicaSet(ctx context.Context, key string) (reconcile.Result, error) {
	name := strings.TrimPrefix(key, rsKeyPrefix)
	c.mu.Lock()
	defer c.mu.Unlock()
	o, err := c.cfg.Store.Get(ctx, v1.KindReplicaSet, name)
	if errors.Is(err, store.ErrNotFound) {
		c.forgetLocked(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get replicasets/%s: %w", name, err)
	}
	rs := o.(*v1.ReplicaSet)
	if rs.Metadata.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	if err := c.snapshotLocked(ctx); err != nil {
		return reconcile.Result{}, err
	}
	h, bad := replicaSetHolder(rs)
	if bad {
		c.log.Warn("unreadable virtual IP in status: replaced", "replicaset", name, "field", "status.virtualIP")
	}
	others := make([]ipam.Holder, 0, len(c.snap))
	for n, oh := range c.snap {
		if n != key {
			others = append(others, oh)
		}
	}
	res, err := ipam.NewTable(others).Allocate(c.rng, h, 0)
	if errors.Is(err, ipam.ErrExhausted) {
		c.log.Error("cannot allocate the virtual IP of a replica set", "replicaset", name, "err", err)
		c.starved[key] = true
		c.snap = nil
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("replicasets/%s: %w", name, err)
	}
	delete(c.starved, key)
	if res.Addresses.Service == h.Held.Service && !bad {
		c.snap[key] = h
		return reconcile.Result{}, nil
	}
	if !c.cfg.IsLeader() {
		return reconcile.Result{}, nil
	}
	next := rs.DeepCopyObject().(*v1.ReplicaSet)
	next.Status.VirtualIP = res.Addresses.Service.String()
	out, err := c.cfg.Store.UpdateStatus(ctx, next) // compare-and-swap on rs's resourceVersion
	switch {
	case errors.Is(err, store.ErrConflict):
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, nil
	case errors.Is(err, store.ErrNotFound):
		c.forgetLocked(key)
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("update status of replicasets/%s: %w", name, err)
	}
	c.allocated.Add(float64(res.Allocated))
	nh, _ := replicaSetHolder(out.(*v1.ReplicaSet))
	c.snap[key] = nh
	c.log.Info("virtual IP allocated", "replicaset", name, "virtualIP", next.Status.VirtualIP)
	return reconcile.Result{}, nil
}
