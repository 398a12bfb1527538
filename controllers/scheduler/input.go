package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// revisionHash returns the revision svc (defaulted) must run: its spec hash and the versions of
// the Secrets its rolling secretRefs name (spechash.Revision). A referenced Secret or key that
// does not exist changes nothing while the spec stays the same: replicas keep running as they
// do, as they did before Secrets rolled anything (deleting a Secret must not take a Service
// down replica by replica). With a new spec, a missing one is part of the revision, and its
// replicas fail with SecretNotFound until it exists, which is another revision.
func revisionHash(ctx context.Context, rd reader, svc *v1.Service) (string, error) {
	names, keys := spechash.RollingSecrets(&svc.Spec)
	if len(names) == 0 && len(svc.Spec.Files) == 0 {
		return spechash.Of(&svc.Spec), nil
	}
	// spec.files: the Configs they read are versions of the revision too (configs.go).
	vs, missing, err := fileVersions(ctx, rd, svc)
	if err != nil {
		return "", err
	}
	for _, name := range names {
		sec, err := rd.Secret(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			missing = true
			vs = append(vs, spechash.SecretVersion{Name: name})
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get secrets/%s referenced by services/%s: %w", name, svc.Metadata.Name, err)
		}
		v := spechash.SecretVersion{Name: name, UID: sec.Metadata.UID}
		d, m := digestOf(sec.Spec.Data, keys[name]) // the cache holds digests (secretVersions)
		v.Digest, missing = d, missing || m
		vs = append(vs, v)
	}
	hash := spechash.Revision(&svc.Spec, vs)
	if cur := svc.Status.CurrentRevision; missing && cur != nil && spechash.SpecPart(cur.SpecHash) == spechash.SpecPart(hash) {
		return cur.SpecHash, nil
	}
	return hash, nil
}

// untilDeadline returns how long until a rolling update that stays without progress reaches
// the progress deadline (Compute fails it once SinceProgress exceeds the deadline), or 0 when
// no rollout is in progress.
func untilDeadline(conds []v1.Condition, deadline time.Duration, now time.Time) time.Duration {
	c := v1.FindCondition(conds, v1.ServiceProgressing)
	if c == nil || c.Reason != v1.ReasonRollingUpdate || deadline <= 0 {
		return 0
	}
	// Compute compares with ">": wake just after the deadline, never on it.
	if d := c.LastTransitionTime.Add(deadline).Sub(now) + time.Millisecond; d > 0 {
		return d
	}
	return time.Millisecond
}

// input gathers the planner's input for svc.
func (s *Scheduler) input(ctx context.Context, svc *v1.Service, hash string, now time.Time) (Input, nodehealth.Report, error) {
	sp := &svc.Spec
	in := Input{
		Desired: sp.DesiredReplicas(), SpecHash: hash,
		MaxSurge: *sp.Update.MaxSurge, MaxUnavailable: *sp.Update.MaxUnavailable,
		Assignments: svc.Status.Assignments, Observed: map[int32]ReplicaInfo{},
		ProgressDeadline: s.cfg.ProgressDeadline, Sticky: sp.StickyVolumes(), Now: now,
	}
	if p := sp.Placement; p != nil {
		in.NodeSelector, in.MaxPerNode = p.NodeSelector, p.MaxPerNode
	}
	if c := v1.FindCondition(svc.Status.Conditions, v1.ServiceProgressing); c != nil && c.Reason == v1.ReasonRollingUpdate {
		in.SinceProgress = now.Sub(c.LastTransitionTime)
	}
	rd := s.reader()
	nodes, err := rd.Nodes(ctx)
	if err != nil {
		return in, nodehealth.Report{}, fmt.Errorf("list nodes: %w", err)
	}
	snap := s.snapshot()
	health := nodehealth.Input{Nodes: nodes, Now: now, Policy: s.cfg.Health, NoView: snap == nil}
	if snap != nil {
		health.View = make([]observed.Node, 0, len(snap.Nodes))
		for _, n := range snap.Nodes {
			health.View = append(health.View, n)
		}
	}
	rep := nodehealth.Evaluate(health)
	in.Nodes = nodeInfos(rep)
	in.ImageHolders = imageHolders(s.cfg.View, sp.Image)
	if snap != nil {
		byIndex := map[int32][]observed.Replica{}
		for _, r := range snap.Replicas[svc.Metadata.Name] {
			byIndex[r.Index] = append(byIndex[r.Index], r)
		}
		for _, a := range svc.Status.Assignments {
			for _, r := range byIndex[a.Index] {
				if r.Node != a.Node {
					continue
				}
				in.Observed[a.Index] = ReplicaInfo{
					Node: r.Node, SpecHash: r.SpecHash, Ready: r.Ready(),
					Failed: IsFailedReason(r.Reason) || (r.Reason == v1.ReasonUnhealthy && r.Restarts >= 3),
					Reason: r.Reason, Message: r.Message,
				}
			}
		}
	}
	if in.CoPlace, err = coPlacement(ctx, rd, snap, svc); err != nil {
		return in, rep, err
	}
	if snap != nil && sp.EgressCheck != nil {
		in.Avoid = s.avoid.update(svc.Metadata.Name, snap.Replicas[svc.Metadata.Name], now)
	}
	if in.Load, err = rd.LoadExcept(ctx, svc.Metadata.Name); err != nil {
		return in, rep, fmt.Errorf("list services: %w", err)
	}
	if err := stackInputs(ctx, rd, svc, &in); err != nil {
		return in, rep, err
	}
	return in, rep, nil
}

// imageHolders are the nodes that advertise image, when the view knows of images (gossip's
// observed.Set does); nil otherwise.
func imageHolders(view observed.View, image string) map[string]bool {
	iv, ok := view.(observed.ImageView)
	if !ok || image == "" {
		return nil
	}
	var out map[string]bool
	for _, n := range iv.NodesWithImage(image) {
		if out == nil {
			out = map[string]bool{}
		}
		out[n] = true
	}
	return out
}

// nodeInfos turns the node-health report into what placement needs. A node takes new replicas
// only when Ready; the replicas on it stay unless the report lets consumers act on its loss
// (Lost, and the disruption brake not holding). Sorted by name, as the report is.
func nodeInfos(rep nodehealth.Report) []NodeInfo {
	out := make([]NodeInfo, 0, len(rep.Nodes))
	for _, n := range rep.Nodes {
		out = append(out, NodeInfo{
			Name: n.Name, Labels: n.Labels, Unschedulable: n.Unschedulable, Drain: n.Drain, NoRuntime: n.NoRuntime, Since: n.Since,
			Healthy: n.Verdict == nodehealth.Ready,
			Held:    n.Verdict != nodehealth.Ready && rep.Keeps(n.Name),
		})
	}
	return out
}
