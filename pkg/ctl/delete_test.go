package ctl_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/ctl"
)

// fakeObserved is the agent's /debug/observed: the replicas gossip knows, set by the test as a
// node's reconciler would publish them, and how often it was asked.
type fakeObserved struct {
	mu       sync.Mutex
	replicas []client.ObservedReplica
	reads    int
}

func (f *fakeObserved) set(rs ...client.ObservedReplica) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replicas = rs
}

func (f *fakeObserved) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeObserved) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	_ = json.NewEncoder(w).Encode(map[string]any{"nodes": []any{}, "replicas": f.replicas})
}

func newObservedCluster(t *testing.T) (*cluster, *fakeObserved) {
	obs := &fakeObserved{}
	c := newCluster(t, func(cfg *apiserver.Config) { cfg.Handlers["GET "+client.ObservedPath] = obs })
	return c, obs
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDeleteWaitsUntilContainersAreGone is point 13: ctl delete returns only once the Service
// has left the store and no node reports a container of it (the node drains, then removes).
func TestDeleteWaitsUntilContainersAreGone(t *testing.T) {
	c, obs := newObservedCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	obs.set(client.ObservedReplica{Service: "hello", Index: 0, Node: "n1", State: "terminating"},
		client.ObservedReplica{Service: "hello", Index: 1, Node: "n2", State: "running"},
		client.ObservedReplica{Service: "other", Index: 0, Node: "n1", State: "running"})

	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- ctl.Run(context.Background(), []string{"delete", "svc", "hello"}, c.env("", &out, &errb, nil))
	}()
	// The object leaves the store at once; ctl keeps looking at the containers.
	waitUntil(t, "the Service to leave the store", func() bool {
		_, err := c.st.Get(context.Background(), v1.KindService, "hello")
		return err != nil
	})
	before := obs.readCount()
	waitUntil(t, "two more reads of observed state", func() bool { return obs.readCount() >= before+2 })
	select {
	case code := <-done:
		t.Fatalf("delete returned (exit %d) while 2 containers were still observed:\n%s%s", code, out.String(), errb.String())
	default:
	}
	obs.set(client.ObservedReplica{Service: "hello", Index: 1, Node: "n2", State: "terminating"},
		client.ObservedReplica{Service: "other", Index: 0, Node: "n1", State: "running"})
	waitUntil(t, "progress for the last container", func() bool { return strings.Contains(out.String(), "1 container(s) left") })
	obs.set(client.ObservedReplica{Service: "other", Index: 0, Node: "n1", State: "running"})
	select {
	case code := <-done:
		want := "service/hello deleted\n" +
			"service/hello: 2 container(s) left: n1/hello-0 terminating, n2/hello-1 running\n" +
			"service/hello: 1 container(s) left: n2/hello-1 terminating\n" +
			"service/hello gone\n"
		if code != 0 || out.String() != want || errb.String() != "" {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant stdout:\n%s", code, out.String(), errb.String(), want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delete did not return once the containers were gone")
	}
}

// TestDeleteNoWaitReturnsAtOnce: --wait=false does not look at observed state at all.
func TestDeleteNoWaitReturnsAtOnce(t *testing.T) {
	c, obs := newObservedCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	obs.set(client.ObservedReplica{Service: "hello", Index: 0, Node: "n1", State: "running"})
	expect(t, c.run(t, "", "delete", "svc", "hello", "--wait=false"), 0, "service/hello deleted\n", "")
	if n := obs.readCount(); n != 0 {
		t.Fatalf("--wait=false read observed state %d times", n)
	}
}

// TestDeleteWaitTimesOut names what is left when the containers outlive --timeout.
func TestDeleteWaitTimesOut(t *testing.T) {
	c, obs := newObservedCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	obs.set(client.ObservedReplica{Service: "hello", Index: 0, Node: "n1", State: "running"})
	expect(t, c.run(t, "", "delete", "svc", "hello", "--timeout", "300ms"), 1,
		"service/hello deleted\nservice/hello: 1 container(s) left: n1/hello-0 running\n",
		"error: timed out after 300ms waiting for deletion (left: service/hello: 1 container(s) left: n1/hello-0 running); --timeout waits longer, --wait=false does not wait\n")
}

// TestDeleteIgnoreNotFoundStillWaitsForContainers: a Service already deleted whose containers
// are still draining (make stop right after a delete) is waited for too.
func TestDeleteIgnoreNotFoundStillWaitsForContainers(t *testing.T) {
	c, obs := newObservedCluster(t)
	obs.set(client.ObservedReplica{Service: "hello", Index: 0, Node: "n1", State: "terminating"})
	expect(t, c.run(t, "", "delete", "svc", "hello", "--ignore-not-found", "--timeout", "300ms"), 1,
		"service/hello: 1 container(s) left: n1/hello-0 terminating\n",
		"error: timed out after 300ms waiting for deletion (left: service/hello: 1 container(s) left: n1/hello-0 terminating); --timeout waits longer, --wait=false does not wait\n")
	obs.set()
	expect(t, c.run(t, "", "delete", "svc", "hello", "--ignore-not-found"), 0, "", "")
}
