package runtime

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/job"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// startJobs runs the job controller and the first node's job runner, with a short backoff.
func (c *cluster) startJobs() {
	c.t.Helper()
	ctl, err := job.NewController(job.ControllerConfig{Store: c.st, Logger: c.logger})
	if err != nil {
		c.t.Fatal(err)
	}
	r, err := job.NewRunner(job.RunnerConfig{Node: c.node, Store: c.st, Docker: c.dc, NamePrefix: c.node + "-",
		BackoffBase: 200 * time.Millisecond, BackoffMax: time.Second, StopTimeout: 2 * time.Second, Logger: c.logger})
	if err != nil {
		c.t.Fatal(err)
	}
	go ctl.Run(c.ctx)
	go r.Run(c.ctx)
}

func (c *cluster) job(name string) *v1.Job {
	c.t.Helper()
	o, err := c.st.Get(c.ctx, v1.KindJob, name)
	if err != nil {
		c.t.Fatal(err)
	}
	return o.(*v1.Job)
}

func (c *cluster) jobContainers(name string) []docker.Container {
	c.t.Helper()
	cs, err := c.dc.List(c.ctx, map[string]string{docker.LabelJob: name, docker.LabelNode: c.node})
	if err != nil {
		c.t.Fatal(err)
	}
	return cs
}

func (c *cluster) waitJob(name string, phase v1.JobPhase, timeout time.Duration) *v1.Job {
	c.t.Helper()
	c.waitFor("jobs/"+name+" "+string(phase), timeout, func() (bool, string) {
		j := c.job(name)
		return j.Status.Phase == phase, fmt.Sprintf("%+v", j.Status)
	})
	return c.job(name)
}

func toolJob(name string, args ...string) *v1.Job {
	return &v1.Job{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindJob}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.JobSpec{Image: "constellation-test/tool:1", Args: args}}
}

// TestJobsOnRealDocker: Jobs run to completion on the real engine: success, failure retried
// up to backoffLimit with the exit code and output reported, files, the active deadline, a deleted
// Job's container stopped; finished containers are removed; a Service's replica on the same
// node and the Job containers leave each other alone.
func TestJobsOnRealDocker(t *testing.T) {
	c := newCluster(t)
	c.startJobs()
	// A Service replica on the node, to check neither side touches the other's containers.
	c.apply("neighbour", echoSpec("constellation-test/echo:1", 1))
	c.waitFor("the neighbour ready", 60*time.Second, c.converged("neighbour"))
	neighbour := c.replicas("neighbour")[0].ContainerID

	c.put(toolJob("ok", "say", "hello", "0"))
	j := c.waitJob("ok", v1.JobSucceeded, 60*time.Second)
	if j.Status.Node != c.node || j.Status.Attempts != 1 || j.Status.ExitCode == nil || *j.Status.ExitCode != 0 ||
		j.Status.StartTime == nil || j.Status.CompletionTime == nil || j.Status.CompletionTime.Before(*j.Status.StartTime) {
		t.Fatalf("succeeded job status %+v", j.Status)
	}
	if cond := v1.FindCondition(j.Status.Conditions, v1.JobComplete); cond == nil || cond.Status != v1.ConditionTrue {
		t.Fatalf("Complete condition %+v", cond)
	}
	c.waitFor("the finished container removed", 20*time.Second, func() (bool, string) {
		cs := c.jobContainers("ok")
		return len(cs) == 0, fmt.Sprint(len(cs))
	})

	// It prints a value of a Secret its env references: the output in status is scrubbed.
	c.put(&v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: "tok"},
		Spec: v1.SecretSpec{Data: v1.SecretData{"token": "s3cr3t-value"}}})
	fails := toolJob("fails", "say", "boom s3cr3t-value", "3")
	fails.Spec.Env = []v1.EnvVar{{Name: "TOKEN", SecretRef: &v1.SecretKeyRef{Name: "tok", Key: "token"}}}
	two := int32(2)
	fails.Spec.BackoffLimit = &two
	c.put(fails)
	j = c.waitJob("fails", v1.JobFailed, 60*time.Second)
	if j.Status.Attempts != 3 || j.Status.ExitCode == nil || *j.Status.ExitCode != 3 || !strings.Contains(j.Status.Message, "boom <redacted>") {
		t.Fatalf("failed job status %+v", j.Status)
	}
	if strings.Contains(j.Status.Message, "s3cr3t") {
		t.Fatalf("a Secret value in the status message: %q", j.Status.Message)
	}
	if cond := v1.FindCondition(j.Status.Conditions, v1.JobFailedCondition); cond == nil || cond.Reason != v1.ReasonBackoffLimitExceeded {
		t.Fatalf("Failed condition %+v", cond)
	}
	c.waitFor("the failed containers removed", 20*time.Second, func() (bool, string) {
		cs := c.jobContainers("fails")
		return len(cs) == 0, fmt.Sprint(len(cs))
	})

	// spec.files reach a Job's container too.
	c.put(configObj("jobconf", map[string]string{"a": "from-config"}))
	reads := toolJob("reads", "serve")
	reads.Spec.Files = []v1.FileMount{{Config: "jobconf", Path: "/etc/jobconf", Mode: 0o640}}
	c.put(reads)
	j = c.waitJob("reads", v1.JobRunning, 60*time.Second)
	if got := statIn(t, j.Status.ContainerID, "/etc/jobconf"); got != "/etc/jobconf 0640 0:0 from-config" {
		t.Fatalf("the Job's file: %q", got)
	}
	if _, err := c.st.Delete(c.ctx, v1.KindJob, "reads", ""); err != nil {
		t.Fatal(err)
	}

	slow := toolJob("slow", "serve")
	slow.Spec.ActiveDeadline = &v1.Duration{Duration: 3 * time.Second}
	c.put(slow)
	c.waitJob("slow", v1.JobRunning, 30*time.Second)
	if cs := c.jobContainers("slow"); len(cs) != 1 || !cs[0].Running || cs[0].Labels[docker.LabelService] != "" {
		t.Fatalf("running job containers %+v", cs)
	}
	j = c.waitJob("slow", v1.JobFailed, 30*time.Second)
	if cond := v1.FindCondition(j.Status.Conditions, v1.JobFailedCondition); cond == nil || cond.Reason != v1.ReasonDeadlineExceeded {
		t.Fatalf("deadline: Failed condition %+v", cond)
	}
	c.waitFor("the deadline's container removed", 20*time.Second, func() (bool, string) {
		cs := c.jobContainers("slow")
		return len(cs) == 0, fmt.Sprint(len(cs))
	})

	c.put(toolJob("deleted", "serve"))
	c.waitJob("deleted", v1.JobRunning, 30*time.Second)
	if _, err := c.st.Delete(c.ctx, v1.KindJob, "deleted", ""); err != nil {
		t.Fatal(err)
	}
	c.waitFor("a deleted job's container stopped and removed", 30*time.Second, func() (bool, string) {
		cs := c.jobContainers("deleted")
		return len(cs) == 0, fmt.Sprint(len(cs))
	})

	// The Service's replica lived through all of it.
	if reps := c.replicas("neighbour"); len(reps) != 1 || reps[0].ContainerID != neighbour {
		t.Fatalf("neighbour replicas %+v, want the container %s", reps, neighbour)
	}
	if msg := c.dockerMatches(c.get("neighbour")); msg != "" {
		t.Fatal(msg)
	}
}
