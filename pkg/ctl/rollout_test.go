package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// background is ctl running in a goroutine, its output readable while it runs.
type background struct {
	out, err syncBuffer
	done     chan int
}

func (c *cluster) start(t *testing.T, args ...string) *background {
	t.Helper()
	b := &background{done: make(chan int, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	go func() {
		defer cancel()
		b.done <- ctl.Run(ctx, args, c.env("", &b.out, &b.err, nil))
	}()
	return b
}

// waitFor waits until ctl printed line (a whole line) to stdout; it fails if ctl ended first.
func (b *background) waitFor(t *testing.T, line string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains("\n"+b.out.String(), "\n"+line+"\n") {
		select {
		case code := <-b.done:
			b.done <- code
			if strings.Contains("\n"+b.out.String(), "\n"+line+"\n") {
				return
			}
			t.Fatalf("ctl exited %d before printing %q\nstdout:\n%s\nstderr:\n%s", code, line, b.out.String(), b.err.String())
		case <-deadline:
			t.Fatalf("ctl did not print %q\nstdout:\n%s", line, b.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (b *background) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-b.done:
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("ctl still running\nstdout:\n%s", b.out.String())
		return -1
	}
}

// setStatus writes the Service's status as the scheduler and the status controller would.
func setStatus(t *testing.T, st store.Store, name string, f func(*v1.Service)) {
	t.Helper()
	ctx := context.Background()
	for {
		o, err := st.Get(ctx, v1.KindService, name)
		if err != nil {
			t.Fatal(err)
		}
		s := o.(*v1.Service)
		f(s)
		if _, err := st.UpdateStatus(ctx, s); err == nil {
			return
		} else if !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
}

func counts(gen int64, replicas, updated, ready int32, conds ...v1.Condition) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Status.ObservedGeneration = gen
		s.Status.Replicas, s.Status.UpdatedReplicas, s.Status.ReadyReplicas = replicas, updated, ready
		for i := range conds {
			conds[i].LastTransitionTime = created
		}
		s.Status.Conditions = conds
	}
}

const hello3 = `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"hello"},"spec":{"image":"hello:2","replicas":3}}`

// TestRolloutStatusSuccess steps the status through a rolling update: ctl prints each stage and
// exits 0 only when every replica is updated and ready, not as soon as Ready turns True.
func TestRolloutStatusSuccess(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, hello3, "apply", "-f", "-"), 0, "service/hello created\n", "")
	b := c.start(t, "rollout", "status", "svc/hello")
	b.waitFor(t, "Waiting for rollout: generation 1 not yet observed")
	setStatus(t, c.st, "hello", counts(1, 3, 1, 3, v1.Condition{Type: v1.ServiceReady, Status: v1.ConditionTrue, Reason: v1.ReasonAllReplicasReady},
		v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionTrue, Reason: v1.ReasonRollingUpdate}))
	b.waitFor(t, "Waiting for rollout: 1 of 3 replicas updated")
	setStatus(t, c.st, "hello", counts(1, 3, 1, 3, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionFalse, Reason: v1.ReasonUnschedulable, Message: "1 of 3 replicas cannot be placed: no node"}))
	b.waitFor(t, "Waiting for rollout: Unschedulable: 1 of 3 replicas cannot be placed: no node")
	setStatus(t, c.st, "hello", counts(1, 4, 3, 3))
	b.waitFor(t, "Waiting for rollout: 1 old replicas are pending termination")
	setStatus(t, c.st, "hello", counts(1, 3, 3, 1))
	b.waitFor(t, "Waiting for rollout: 1 of 3 updated replicas are ready")
	select {
	case code := <-b.done:
		t.Fatalf("exited %d before the rollout completed:\n%s", code, b.out.String())
	default:
	}
	setStatus(t, c.st, "hello", counts(1, 3, 3, 3, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionTrue, Reason: v1.ReasonRolloutComplete}))
	if code := b.wait(t); code != 0 || b.err.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, b.err.String())
	}
	if !strings.HasSuffix(b.out.String(), "\nservice/hello successfully rolled out: 3 of 3 updated replicas are ready\n") {
		t.Fatalf("stdout:\n%s", b.out.String())
	}

	// Already rolled out: one line, at once; a plain NAME works as svc/NAME.
	expect(t, c.run(t, "", "rollout", "status", "hello"), 0, "service/hello successfully rolled out: 3 of 3 updated replicas are ready\n", "")

	// Scaled to 0: done only once no replica runs any more.
	expect(t, c.run(t, "", "scale", "hello", "--replicas", "0"), 0, "service/hello scaled from 3 to 0 replicas\n", "")
	b = c.start(t, "rollout", "status", "svc/hello")
	b.waitFor(t, "Waiting for rollout: generation 2 not yet observed")
	setStatus(t, c.st, "hello", counts(2, 3, 3, 3))
	b.waitFor(t, "Waiting for rollout: 3 replicas above the 0 wanted are pending termination")
	setStatus(t, c.st, "hello", counts(2, 0, 0, 0))
	if code := b.wait(t); code != 0 || !strings.HasSuffix(b.out.String(), "\nservice/hello successfully rolled out: 0 of 0 updated replicas are ready\n") {
		t.Fatalf("scaled to 0: exit %d\n%s%s", code, b.out.String(), b.err.String())
	}
}

// TestRolloutStatusFailure: a failed rollout (the progress deadline, an image that does not
// exist) ends the wait with exit 1 and the condition's reason on one line.
func TestRolloutStatusFailure(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, hello3, "apply", "-f", "-"), 0, "service/hello created\n", "")
	b := c.start(t, "rollout", "status", "svc/hello")
	setStatus(t, c.st, "hello", counts(1, 3, 1, 2, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionTrue, Reason: v1.ReasonRollingUpdate}))
	b.waitFor(t, "Waiting for rollout: 1 of 3 replicas updated")
	setStatus(t, c.st, "hello", counts(1, 3, 1, 2, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionFalse, Reason: v1.ReasonRolloutFailed,
		Message: "no progress for 10m0s (updated 1 of 3, ready 1)"}))
	if code := b.wait(t); code != 1 || b.err.String() != "error: service/hello: rollout failed: RolloutFailed: no progress for 10m0s (updated 1 of 3, ready 1)\n" {
		t.Fatalf("exit %d, stderr %q", code, b.err.String())
	}

	setStatus(t, c.st, "hello", counts(1, 3, 1, 2, v1.Condition{Type: v1.ServiceDegraded, Status: v1.ConditionTrue, Reason: v1.ReasonImageNotFound,
		Message: "hello-1 on n1: pull access denied for hello:2"}))
	expect(t, c.run(t, "", "rollout", "status", "svc/hello"), 1,
		"service/hello: rollout failed: ImageNotFound: hello-1 on n1: pull access denied for hello:2\n",
		"error: service/hello: rollout failed: ImageNotFound: hello-1 on n1: pull access denied for hello:2\n")

	expect(t, c.run(t, "", "rollout", "status", "svc/nope"), 1, "", "error: services/nope: not found\n")
	expect(t, c.run(t, "", "rollout", "status", "dns/www"), 1, "", "error: rollout status works on Services only, got dnsrecords/www\n")
	expect(t, c.run(t, "", "rollout", "status", "svc"), 1, "", "error: rollout status needs a Service name: svc/NAME or NAME, got the kind \"svc\" alone\n")
	expect(t, c.run(t, "", "rollout", "status", "hello", "--timeout", "0s"), 1, "", "error: rollout status: --timeout must be positive, got 0s\n")
}

// TestRolloutStatusTimeout: nothing moves; --timeout ends it with the last stage seen.
func TestRolloutStatusTimeout(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, hello3, "apply", "-f", "-"), 0, "service/hello created\n", "")
	setStatus(t, c.st, "hello", counts(1, 3, 3, 2))
	start := time.Now()
	expect(t, c.run(t, "", "rollout", "status", "svc/hello", "--timeout", "300ms"), 1,
		"Waiting for rollout: 2 of 3 updated replicas are ready\n",
		"error: service/hello: timed out after 300ms waiting for the rollout (last: Waiting for rollout: 2 of 3 updated replicas are ready)\n")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("--timeout 300ms took %v", d)
	}
}

func getService(t *testing.T, st store.Store, name string) *v1.Service {
	t.Helper()
	o, err := st.Get(context.Background(), v1.KindService, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Service)
}

// TestRolloutRestart: restart writes spec.restartedAt (a new generation and spec hash, so the
// replicas roll); applying the original file afterwards changes nothing; a second restart in
// the same second still changes the hash; a write racing the restart is not lost.
func TestRolloutRestart(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	before := getService(t, c.st, "hello")
	expect(t, c.run(t, "", "rollout", "restart", "svc/hello"), 0, "service/hello restarted\n", "")
	after := getService(t, c.st, "hello")
	if after.Spec.RestartedAt == nil || !after.Spec.RestartedAt.Equal(ctlNow) || after.Metadata.Generation != before.Metadata.Generation+1 {
		t.Fatalf("restartedAt %v, generation %d -> %d", after.Spec.RestartedAt, before.Metadata.Generation, after.Metadata.Generation)
	}
	if spechash.Of(&after.Spec) == spechash.Of(&before.Spec) {
		t.Fatal("the spec hash did not change: nothing would roll")
	}
	r := c.run(t, "", "get", "svc", "hello", "-o", "json")
	if !strings.Contains(r.stdout, `"restartedAt": "`+ctlNow.Format(time.RFC3339)+`"`) {
		t.Fatalf("restartedAt not RFC 3339 seconds:\n%s", r.stdout)
	}

	// Re-applying the file (no restartedAt) keeps the restart: no new generation, same hash.
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello unchanged\n", "")
	again := getService(t, c.st, "hello")
	if again.Metadata.Generation != after.Metadata.Generation || spechash.Of(&again.Spec) != spechash.Of(&after.Spec) {
		t.Fatalf("re-apply restarted again: generation %d -> %d", after.Metadata.Generation, again.Metadata.Generation)
	}

	// The clock has not moved (ctlNow): the second restart is one second later all the same.
	expect(t, c.run(t, "", "rollout", "restart", "hello"), 0, "service/hello restarted\n", "")
	second := getService(t, c.st, "hello")
	if !second.Spec.RestartedAt.Equal(ctlNow.Add(time.Second)) || second.Metadata.Generation != after.Metadata.Generation+1 {
		t.Fatalf("second restart: restartedAt %v generation %d", second.Spec.RestartedAt, second.Metadata.Generation)
	}

	// A label written between ctl's read and its write: the PUT conflicts (409), ctl reads
	// again and writes both.
	var once sync.Once
	c.setBefore(func(r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/apis/v1/services/hello" {
			once.Do(func() {
				s := getService(t, c.st, "hello")
				s.Metadata.Labels = map[string]string{"team": "a"}
				if _, err := c.st.Update(context.Background(), s); err != nil {
					t.Error(err)
				}
			})
		}
	})
	expect(t, c.run(t, "", "rollout", "restart", "hello"), 0, "service/hello restarted\n", "")
	third := getService(t, c.st, "hello")
	if third.Metadata.Labels["team"] != "a" || !third.Spec.RestartedAt.Equal(ctlNow.Add(2*time.Second)) {
		t.Fatalf("after a conflict: labels %v restartedAt %v", third.Metadata.Labels, third.Spec.RestartedAt)
	}
	c.setBefore(nil)

	expect(t, c.run(t, "", "rollout", "restart", "nope"), 1, "", "error: services/nope: not found\n")
	expect(t, c.run(t, "", "rollout", "restart", "no/n1"), 1, "", "error: rollout restart works on Services only, got nodes/n1\n")
}

// TestRolloutHistory lists revisions as the scheduler keeps them, each with what changed, and
// prints one with --revision.
func TestRolloutHistory(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	expect(t, c.run(t, "", "rollout", "history", "svc/hello"), 0, "service/hello has no revisions yet (the scheduler has not seen it)\n", "")
	at := func(d time.Duration) *time.Time { t := ctlNow.Add(-d); return &t }
	restarted := ctlNow.Add(-time.Minute)
	setStatus(t, c.st, "hello", func(s *v1.Service) {
		r1 := v1.ServiceRevision{Revision: 1, SpecHash: "h1", CreatedAt: at(3 * time.Hour), Spec: v1.ServiceSpec{Image: "hello:1",
			Env: []v1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "x"}}}}
		r2 := v1.ServiceRevision{Revision: 2, SpecHash: "h2", CreatedAt: at(2 * time.Hour), Spec: v1.ServiceSpec{Image: "hello:2",
			Env: []v1.EnvVar{{Name: "A", Value: "2"}, {Name: "C", Value: "secret-value"}}, Ports: []v1.ServicePort{{ContainerPort: 8080}}}}
		r3 := v1.ServiceRevision{Revision: 3, SpecHash: "h2-s1", CreatedAt: at(time.Hour), Spec: r2.Spec}
		r4 := v1.ServiceRevision{Revision: 4, SpecHash: "h4", CreatedAt: at(time.Minute), Spec: r2.Spec}
		r4.Spec.RestartedAt = &restarted
		r4.Spec.Replicas = ptr(int32(2)) // the current revision is whole; history entries are not
		s.Status.RevisionHistory = []v1.ServiceRevision{r1, r2, r3}
		s.Status.PreviousRevision = &r3
		s.Status.CurrentRevision = &r4
	})
	expect(t, c.run(t, "", "rollout", "history", "svc/hello"), 0,
		"REVISION      CHANGE                                                  AGE\n"+
			"1             image hello:1                                           3h\n"+
			"2             image hello:1 -> hello:2; env +C -B ~A; ports changed   120m\n"+
			"3             Secret values                                           60m\n"+
			"4 (current)   restarted at 2026-11-26T11:59:00Z                       60s\n", "")
	if r := c.run(t, "", "rollout", "history", "svc/hello"); strings.Contains(r.stdout, "secret-value") {
		t.Fatalf("an env value was printed:\n%s", r.stdout)
	}

	r := c.run(t, "", "rollout", "history", "hello", "--revision", "2")
	var rev v1.ServiceRevision
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rev) != nil || rev.Revision != 2 || rev.Spec.Image != "hello:2" || len(rev.Spec.Env) != 2 {
		t.Fatalf("--revision 2: %+v", r)
	}
	r = c.run(t, "", "rollout", "history", "hello", "--revision", "4")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rev) != nil || rev.Revision != 4 || rev.Spec.RestartedAt == nil || rev.Spec.Replicas != nil {
		t.Fatalf("--revision 4: %+v", r)
	}
	expect(t, c.run(t, "", "rollout", "history", "hello", "--revision", "9"), 1, "",
		"error: services/hello: no revision 9 (kept: 1, 2, 3, 4 (current))\n")
	expect(t, c.run(t, "", "rollout", "history", "hello", "--revision", "-2"), 1, "",
		"error: services/hello: --revision must be 1 or more, got -2\n")
}

func TestRolloutUndoToRevision(t *testing.T) {
	st := store.NewMemory(store.MemoryConfig{Clock: clocktesting.NewFakePassiveClock(created)})
	var mu sync.Mutex
	var asked []int64
	c := newClusterStore(t, st, func(cfg *apiserver.Config) {
		cfg.Undo = func(ctx context.Context, name string, rev int64) (v1.Object, error) {
			mu.Lock()
			asked = append(asked, rev)
			mu.Unlock()
			if rev == 7 {
				return nil, fmt.Errorf("services/%s: %w: no such revision in the history: revision 7 (kept: 1, 2 (current))", name, store.ErrNotFound)
			}
			o, err := st.Get(ctx, v1.KindService, name)
			if err != nil {
				return nil, err
			}
			s := o.(*v1.Service)
			s.Spec.Image = fmt.Sprintf("hello:r%d", rev)
			return st.Update(ctx, s)
		}
	})
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	expect(t, c.run(t, "", "rollout", "undo", "svc/hello", "--to-revision", "2"), 0, "service/hello rolled back (image hello:r2, generation 2)\n", "")
	expect(t, c.run(t, "", "rollout", "undo", "hello"), 0, "service/hello rolled back (image hello:r0, generation 3)\n", "")
	expect(t, c.run(t, "", "rollout", "undo", "hello", "--to-revision", "7"), 1, "",
		"error: services/hello: not found: no such revision in the history: revision 7 (kept: 1, 2 (current))\n")
	expect(t, c.run(t, "", "rollout", "undo", "hello", "--to-revision", "-1"), 1, "",
		"error: services/hello: --to-revision must be a revision number (1 or more; 0: the previous one), got -1\n")
	expect(t, c.run(t, "", "rollout", "undo", "rs/hello"), 1, "", "error: rollout undo works on Services only, got replicasets/hello\n")
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(asked) != "[2 0 7]" {
		t.Fatalf("the server was asked for revisions %v, want [2 0 7]", asked)
	}
}
