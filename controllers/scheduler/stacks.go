package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// indexHostPort indexes Services by the host ports their replicas hold ("53/udp").
const indexHostPort = "hostPort"

// indexDependsOn indexes Services by the Services they depend on (spec.dependsOn).
const indexDependsOn = "dependsOn"

func hostPortKeys(svc *v1.Service) []string { return svc.Spec.HostPorts() }

func dependsOnNames(svc *v1.Service) []string {
	out := make([]string, 0, len(svc.Spec.DependsOn))
	for _, d := range svc.Spec.DependsOn {
		out = append(out, d.Service)
	}
	return out
}

// portsTaken returns, per node, the host ports of keys that Services other than svc hold there
// through their assignments, and by whom.
func portsTaken(ctx context.Context, rd reader, svc *v1.Service, keys []string) (map[string]map[string]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	holders, err := rd.HostPortHolders(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, o := range holders {
		if o.Metadata.Name == svc.Metadata.Name {
			continue
		}
		theirs := map[string]bool{}
		for _, k := range o.Spec.HostPorts() {
			theirs[k] = true
		}
		for _, a := range o.Status.Assignments {
			for _, k := range keys {
				if !theirs[k] {
					continue
				}
				if out[a.Node] == nil {
					out[a.Node] = map[string]string{}
				}
				if _, ok := out[a.Node][k]; !ok {
					out[a.Node][k] = o.Metadata.Name
				}
			}
		}
	}
	return out, nil
}

// holdBack returns why svc's dependsOn conditions do not hold cluster-wide, or "". It reads
// the dependencies' status as the status controller aggregates it from every node: "started"
// holds when a replica runs somewhere, "healthy" when one is ready (status.readyReplicas). A
// Service with upstreams (no replica) meets both.
func holdBack(ctx context.Context, rd reader, svc *v1.Service) (string, error) {
	var why []string
	for _, d := range svc.Spec.DependsOn {
		dep, err := rd.Service(ctx, d.Service)
		if errors.Is(err, store.ErrNotFound) {
			why = append(why, fmt.Sprintf("services/%s does not exist", d.Service))
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get dependency services/%s of services/%s: %w", d.Service, svc.Metadata.Name, err)
		}
		if dep.Spec.IsUpstreamService() {
			continue
		}
		if d.Condition == v1.DependencyHealthy {
			if dep.Status.ReadyReplicas < 1 {
				why = append(why, fmt.Sprintf("services/%s is not healthy (0 ready replicas)", d.Service))
			}
			continue
		}
		running := false
		for _, r := range dep.Status.ReplicaStatuses {
			running = running || r.State == v1.ReplicaRunning
		}
		if !running {
			why = append(why, fmt.Sprintf("services/%s is not started (no running replica)", d.Service))
		}
	}
	return strings.Join(why, "; "), nil
}

// stackInputs fills the planner's input for global mode, host ports and dependsOn.
func stackInputs(ctx context.Context, rd reader, svc *v1.Service, in *Input) error {
	in.Global = svc.Spec.IsGlobal()
	in.HostPorts = svc.Spec.HostPorts()
	var err error
	if in.PortsTaken, err = portsTaken(ctx, rd, svc, in.HostPorts); err != nil {
		return fmt.Errorf("list services holding host ports: %w", err)
	}
	in.HoldBack, err = holdBack(ctx, rd, svc)
	return err
}

// stackWakeups returns the Services to enqueue after o changed (old is its previous version,
// nil when added or deleted): those that depend on it, and those sharing one of its host ports
// (a port it released may let them place).
func stackWakeups(indexed func(index, value string) []string, old, o *v1.Service) []string {
	var out []string
	out = append(out, indexed(indexDependsOn, o.Metadata.Name)...)
	keys := o.Spec.HostPorts()
	if old != nil {
		keys = append(keys, old.Spec.HostPorts()...)
	}
	for _, k := range keys {
		for _, n := range indexed(indexHostPort, k) {
			if n != o.Metadata.Name {
				out = append(out, n)
			}
		}
	}
	return out
}
