package node

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"

	clocktesting "k8s.io/utils/clock/testing"
)

// rollWorld is one node with its scheduler, node reconciler and the fake engine, driven pass by
// pass on a stepped clock: a scheduler pass, then node passes, per step.
type rollWorld struct {
	t     *testing.T
	ctx   context.Context
	clk   *clocktesting.FakeClock
	st    *store.Memory
	view  *observed.Set
	dock  *fakeDocker
	sched *scheduler.Scheduler
	rec   *Reconciler
}

func newRollWorld(t *testing.T) *rollWorld {
	w := &rollWorld{t: t, ctx: context.Background(), clk: clocktesting.NewFakeClock(time.Unix(1000, 0)), st: store.NewMemory(), view: observed.NewSet()}
	w.dock = newFakeDocker(w.clock)
	o, err := w.st.Create(w.ctx, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	n := o.(*v1.Node)
	n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := w.st.UpdateStatus(w.ctx, n); err != nil {
		t.Fatal(err)
	}
	w.view.SetNode(observed.Node{Name: "n1", Alive: true})
	w.startAgent()
	return w
}

func (w *rollWorld) clock() time.Time { return w.clk.Now() }

// startAgent starts the scheduler and the node reconciler afresh, as an agent restart does.
func (w *rollWorld) startAgent() {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := scheduler.New(scheduler.Config{Store: w.st, View: w.view, Clock: w.clk, Logger: log})
	if err != nil {
		w.t.Fatal(err)
	}
	rec, err := New(Config{Node: "n1", Store: w.st, Docker: w.dock, Clock: w.clk, DrainDelay: -1, MinReady: time.Millisecond,
		Publish: func(rs []observed.Replica) { w.view.SetNodeReplicas("n1", rs) }, Logger: log})
	if err != nil {
		w.t.Fatal(err)
	}
	w.sched, w.rec = s, rec
}

// step is one scheduler pass and one node pass per Service, then, a second later, another node
// pass that sees the new containers ready.
func (w *rollWorld) step(names ...string) {
	w.t.Helper()
	for _, name := range names {
		if _, err := w.sched.Reconcile(w.ctx, name); err != nil {
			w.t.Fatalf("schedule %s: %v", name, err)
		}
		if _, err := w.rec.Reconcile(w.ctx, name); err != nil {
			w.t.Fatalf("reconcile %s: %v", name, err)
		}
	}
	w.clk.Step(time.Second)
	for _, name := range names {
		if _, err := w.rec.Reconcile(w.ctx, name); err != nil {
			w.t.Fatalf("reconcile %s: %v", name, err)
		}
	}
}

// settled reports whether name's rollout is complete and every container runs its revision.
func (w *rollWorld) settled(name string) bool {
	svc := w.service(name)
	c := v1.FindCondition(svc.Status.Conditions, v1.ServiceProgressing)
	if c == nil || c.Reason != v1.ReasonRolloutComplete {
		return false
	}
	cs := w.containers(name)
	for _, c := range cs {
		if c.Labels[docker.LabelSpecHash] != spechash.Current(svc) {
			return false
		}
	}
	return len(cs) == int(svc.Spec.DesiredReplicas())
}

func (w *rollWorld) settle(names ...string) {
	w.t.Helper()
	for range 40 {
		w.step(names...)
		done := true
		for _, n := range names {
			done = done && w.settled(n)
		}
		if done {
			return
		}
	}
	w.t.Fatalf("%v did not settle: %+v", names, w.containers(names[0]))
}

func (w *rollWorld) service(name string) *v1.Service {
	o, err := w.st.Get(w.ctx, v1.KindService, name)
	if err != nil {
		w.t.Fatal(err)
	}
	return o.(*v1.Service)
}

// containers returns name's containers, sorted by ID.
func (w *rollWorld) containers(name string) []docker.Container {
	cs, err := w.dock.List(w.ctx, map[string]string{docker.LabelService: name})
	if err != nil {
		w.t.Fatal(err)
	}
	return cs
}

func (w *rollWorld) ids(name string) []string {
	var out []string
	for _, c := range w.containers(name) {
		out = append(out, c.ID)
	}
	return out
}

// env returns the value of variable v in container id as it was created.
func (w *rollWorld) env(id, v string) string {
	w.dock.mu.Lock()
	defer w.dock.mu.Unlock()
	for _, kv := range w.dock.env[id] {
		if k, val, _ := strings.Cut(kv, "="); k == v {
			return val
		}
	}
	return ""
}

func (w *rollWorld) putSecret(name string, data map[string]string, labels map[string]string) *v1.Secret {
	w.t.Helper()
	sec := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret},
		Metadata: v1.ObjectMeta{Name: name, Labels: labels}, Spec: v1.SecretSpec{Data: data}}
	var o v1.Object
	var err error
	if _, gerr := w.st.Get(w.ctx, v1.KindSecret, name); gerr == nil {
		o, err = w.st.Update(w.ctx, sec)
	} else {
		o, err = w.st.Create(w.ctx, sec)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return o.(*v1.Secret)
}

func (w *rollWorld) putService(name string, replicas int32, restart v1.SecretRestart) {
	w.t.Helper()
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &replicas, Ports: []v1.ServicePort{{ContainerPort: 8080}},
			Env: []v1.EnvVar{{Name: "PASSWORD", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "password", Restart: restart}}}}}
	if _, err := w.st.Create(w.ctx, svc); err != nil {
		w.t.Fatal(err)
	}
}

// Changing a Secret's value rolls the Services that reference it, one replica at a time within
// maxSurge/maxUnavailable, and the new containers see the new value. Nothing else rolls: not a
// Service whose reference says restart: never, not an unrelated Secret's change, not a write of
// the same data, not a label on the Secret, not an agent restart, not the Secret's deletion.
func TestSecretRotationRollsReferencingServices(t *testing.T) {
	w := newRollWorld(t)
	w.putSecret("db", map[string]string{"password": "p1", "user": "app"}, nil)
	w.putSecret("other", map[string]string{"token": "t1"}, nil)
	w.putService("web", 3, "")
	w.putService("batch", 1, v1.SecretRestartNever)
	w.settle("web", "batch")
	for _, name := range []string{"web", "batch"} {
		for _, id := range w.ids(name) {
			if got := w.env(id, "PASSWORD"); got != "p1" {
				t.Fatalf("%s container %s: PASSWORD=%q, want p1", name, id, got)
			}
		}
	}
	webIDs, batchIDs := w.ids("web"), w.ids("batch")
	unchanged := func(what string) {
		t.Helper()
		for range 3 {
			w.step("web", "batch")
		}
		if got := w.ids("web"); !slices.Equal(got, webIDs) {
			t.Fatalf("%s: web containers %v, want %v", what, got, webIDs)
		}
		if got := w.ids("batch"); !slices.Equal(got, batchIDs) {
			t.Fatalf("%s: batch containers %v, want %v", what, got, batchIDs)
		}
	}

	// The same data written again (a new map, as a client's apply makes it), and a label.
	before := w.putSecret("db", map[string]string{"user": "app", "password": "p1"}, nil).Metadata.Generation
	if after := w.putSecret("db", map[string]string{"user": "app", "password": "p1"}, map[string]string{"team": "a"}).Metadata.Generation; after != before {
		t.Fatalf("a write of the same data moved the generation from %d to %d", before, after)
	}
	unchanged("same data written again")
	w.putSecret("other", map[string]string{"token": "t2"}, nil)
	unchanged("an unrelated Secret changed")
	w.startAgent()
	unchanged("agent restart")

	// Rotation: web rolls one replica at a time (start-first: maxSurge 1, maxUnavailable 0).
	oldRev := spechash.Current(w.service("web"))
	w.putSecret("db", map[string]string{"password": "p2", "user": "app"}, map[string]string{"team": "a"})
	lastNew := 0
	for step := 0; !w.settled("web") || step == 0; step++ {
		if step > 40 {
			t.Fatalf("web did not roll: %+v", w.containers("web"))
		}
		w.step("web", "batch")
		cs := w.containers("web")
		var newer, running int
		for _, c := range cs {
			if c.Running {
				running++
			}
			if w.env(c.ID, "PASSWORD") == "p2" {
				newer++
			}
		}
		if len(cs) > 4 || running < 3 {
			t.Fatalf("step %d: %d containers, %d running: outside maxSurge 1 / maxUnavailable 0", step, len(cs), running)
		}
		if newer > lastNew+1 {
			t.Fatalf("step %d: %d replicas with the new value, %d before: more than one at a time", step, newer, lastNew)
		}
		t.Logf("step %d: %d containers, %d running, %d new", step, len(cs), running, newer)
		lastNew = newer
	}
	svc := w.service("web")
	rev := spechash.Current(svc)
	if rev == oldRev || spechash.SpecPart(rev) != spechash.SpecPart(oldRev) {
		t.Fatalf("revision %q after rotation, %q before: want the same spec, new secrets", rev, oldRev)
	}
	for _, c := range w.containers("web") {
		if slices.Contains(webIDs, c.ID) || w.env(c.ID, "PASSWORD") != "p2" || c.Labels[docker.LabelSpecHash] != rev {
			t.Fatalf("after rotation: container %s (hash %s) PASSWORD=%q; old containers %v", c.ID, c.Labels[docker.LabelSpecHash], w.env(c.ID, "PASSWORD"), webIDs)
		}
	}
	if svc.Status.PreviousRevision != nil {
		t.Fatalf("a Secret rotation became the previous revision (rollout undo would go nowhere): %+v", svc.Status.PreviousRevision)
	}
	if got := w.ids("batch"); !slices.Equal(got, batchIDs) || w.env(got[0], "PASSWORD") != "p1" {
		t.Fatalf("batch (restart: never) was replaced: %v, want %v", got, batchIDs)
	}

	// Deleting the Secret leaves running replicas alone, as before rotation rolled anything.
	webIDs = w.ids("web")
	sec, _ := w.st.Get(w.ctx, v1.KindSecret, "db")
	if _, err := w.st.Delete(w.ctx, v1.KindSecret, "db", sec.GetMetadata().ResourceVersion); err != nil {
		t.Fatal(err)
	}
	unchanged("Secret deleted")
	if got := spechash.Current(w.service("web")); got != rev {
		t.Fatalf("revision after the Secret's deletion: %q, want %q", got, rev)
	}

	// Created again, it is another Secret (a new uid): web rolls to it.
	w.putSecret("db", map[string]string{"password": "p3", "user": "app"}, nil)
	w.settle("web", "batch")
	for _, id := range w.ids("web") {
		if slices.Contains(webIDs, id) || w.env(id, "PASSWORD") != "p3" {
			t.Fatalf("after re-creation: container %s PASSWORD=%q", id, w.env(id, "PASSWORD"))
		}
	}
	if got := w.ids("batch"); !slices.Equal(got, batchIDs) {
		t.Fatalf("batch (restart: never) was replaced: %v", got)
	}

	// With restart: never, a container created for another reason (here a scale-up) reads the
	// value as it is now; the running one keeps the value it started with.
	b := w.service("batch")
	two := int32(2)
	b.Spec.Replicas = &two
	if _, err := w.st.Update(w.ctx, b); err != nil {
		t.Fatal(err)
	}
	w.settle("batch")
	got := map[string]string{}
	for _, id := range w.ids("batch") {
		got[id] = w.env(id, "PASSWORD")
	}
	if len(got) != 2 || got[batchIDs[0]] != "p1" {
		t.Fatalf("batch after scale-up: %v, want %s still with p1 and a new one with p3", got, batchIDs[0])
	}
	for id, v := range got {
		if id != batchIDs[0] && v != "p3" {
			t.Fatalf("batch's new container %s: PASSWORD=%q, want p3", id, v)
		}
	}
}

// A rotation whose new value the application rejects fails like a bad image: the new replica
// crash-loops, Progressing turns False/RolloutFailed, and the old replicas keep running with the
// old value. Writing a good value is a new revision, and the rollout completes.
func TestSecretRotationFailsLikeAnImageUpdate(t *testing.T) {
	w := newRollWorld(t)
	w.putSecret("db", map[string]string{"password": "p1"}, nil)
	w.putService("web", 3, "")
	w.settle("web")
	old := w.ids("web")

	w.dock.mu.Lock()
	w.dock.exitsWith = "PASSWORD=bad" // the application refuses the value
	w.dock.mu.Unlock()
	w.putSecret("db", map[string]string{"password": "bad"}, nil)
	failed := false
	for range 60 {
		w.step("web")
		if c := v1.FindCondition(w.service("web").Status.Conditions, v1.ServiceProgressing); c != nil && c.Reason == v1.ReasonRolloutFailed {
			failed = true
			break
		}
	}
	if !failed {
		t.Fatalf("no RolloutFailed: %+v", w.service("web").Status.Conditions)
	}
	var running []string
	for _, c := range w.containers("web") {
		if c.Running {
			running = append(running, c.ID)
			if w.env(c.ID, "PASSWORD") != "p1" {
				t.Fatalf("container %s runs with the refused value", c.ID)
			}
		}
	}
	if !slices.Equal(running, old) {
		t.Fatalf("running %v after the failed rotation, want the old replicas %v", running, old)
	}

	w.putSecret("db", map[string]string{"password": "p2"}, nil)
	w.settle("web")
	for _, id := range w.ids("web") {
		if w.env(id, "PASSWORD") != "p2" {
			t.Fatalf("after the fix: container %s PASSWORD=%q", id, w.env(id, "PASSWORD"))
		}
	}
}
