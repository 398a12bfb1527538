// The simulated nodes: which are up, and the Service status (replica virtual IPs and states) the
// bench writes for them as the status and mesh controllers would; reading the ReplicaSet's status.

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset/redis/redistest"
	"github.com/constellation-sh/constellation/pkg/store"
)

type bench struct {
	st       store.Store
	set      *redistest.Set
	mu       sync.Mutex
	up       []bool
	port     int
	sentPort int
}

func ipOf(kind, i int) string { return fmt.Sprintf("127.0.%d.%d", kind, i+1) }

func (b *bench) writeStatus(ctx context.Context, name string, kind int, n int) error {
	for {
		o, err := b.st.Get(ctx, v1.KindService, name)
		if err != nil {
			return err
		}
		svc := o.(*v1.Service)
		svc.Status.ReplicaVirtualIPs, svc.Status.ReplicaStatuses = nil, nil
		b.mu.Lock()
		for i := range n {
			state := v1.ReplicaRunning
			if !b.up[i] {
				state = v1.ReplicaExited
			}
			svc.Status.ReplicaVirtualIPs = append(svc.Status.ReplicaVirtualIPs, v1.ReplicaVirtualIP{Index: int32(i), IP: ipOf(kind, i)})
			svc.Status.ReplicaStatuses = append(svc.Status.ReplicaStatuses, v1.ReplicaStatus{Index: int32(i),
				Node: "n" + strconv.Itoa(i), State: state, Health: v1.HealthHealthy})
		}
		b.mu.Unlock()
		_, err = b.st.UpdateStatus(ctx, svc)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
}

func (b *bench) setUp(ctx context.Context, i int, up bool, n int) error {
	b.mu.Lock()
	b.up[i] = up
	b.mu.Unlock()
	if err := b.writeStatus(ctx, "redis", 1, n); err != nil {
		return err
	}
	return b.writeStatus(ctx, "cache-sentinel", 2, n)
}

func (b *bench) status(ctx context.Context) (*v1.ReplicaSet, error) {
	o, err := b.st.Get(ctx, v1.KindReplicaSet, "cache")
	if err != nil {
		return nil, err
	}
	return o.(*v1.ReplicaSet), nil
}

func agreed(rs *v1.ReplicaSet) bool {
	c := v1.FindCondition(rs.Status.Conditions, v1.ReplicaSetPrimaryAgreed)
	return c != nil && c.Status == v1.ConditionTrue
}

func ready(rs *v1.ReplicaSet) bool {
	c := v1.FindCondition(rs.Status.Conditions, v1.ReplicaSetReady)
	return c != nil && c.Status == v1.ConditionTrue
}

func index(name string) int {
	i, _ := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
	return i
}
