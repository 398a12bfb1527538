package agent

import (
	"context"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"

	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/controllers/job"
)

// setupJobs builds the Job runner of this node (when it runs Docker) and returns the
// cluster-wide job controller's run function, which setupControllers runs with the other
// controllers while this node holds the controller Lease (controllers/job, docs/jobs.md).
func (a *Agent) setupJobs(isLeader func() bool, loopMetrics *ctrl.Metrics) (func(ctx context.Context), error) {
	if eng, ok := a.engine.(job.Docker); ok { // off on an engine without CopyFiles (engine.go)
		r, err := job.NewRunner(job.RunnerConfig{
			Node: a.cfg.Node.Name, Store: a.store, Docker: eng,
			HostAccess: a.hostAccessPolicy(), // Node and Resolve filled in by the runner
			MeshDNS:    meshDNSAddress(a.cfg), MeshDomain: MeshDomain,
			Logger: a.log, Registerer: a.reg, LoopMetrics: loopMetrics,
		})
		if err != nil {
			return nil, err
		}
		a.addComponent("job-runner", func(ctx context.Context) error { r.Run(ctx); return nil })
	}
	c, err := job.NewController(job.ControllerConfig{
		Store: a.store, IsLeader: isLeader,
		Logger: a.log, Registerer: a.reg, LoopMetrics: loopMetrics,
	})
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// admitJobHostAccess checks the host access of a Job's (or a CronJob's template's) container
// against this agent's flags, as admitSecurity does a Service's; field paths are the Job's.
func (a *Agent) admitJobHostAccess(obj v1.Object) v1.ErrorList {
	var spec v1.JobSpec
	prefix := "spec"
	switch o := obj.(type) {
	case *v1.Job:
		spec = o.Spec
	case *v1.CronJob:
		spec, prefix = o.Spec.JobTemplate, "spec.jobTemplate"
	default:
		return nil
	}
	sp := spec.ServiceSpec()
	errs := a.hostAccessPolicy().Check(&sp)
	for _, e := range errs {
		if rest, ok := strings.CutPrefix(e.Field, "spec"); ok {
			e.Field = prefix + rest
		}
	}
	return errs
}
