package ctl_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/events"
)

// putEvent stores an Event seen count times, first `first` and last `last` before ctl's now.
func putEvent(t *testing.T, c *cluster, name string, obj v1.ObjectReference, typ v1.EventType, reason v1.EventReason, msg, node string, count int32, first, last time.Duration) {
	t.Helper()
	e := &v1.Event{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.EventSpec{InvolvedObject: obj, Type: typ, Reason: reason, Message: msg,
		Component: "node", Node: node, Count: count, FirstSeen: ctlNow.Add(-first), LastSeen: ctlNow.Add(-last)}}
	e.Default()
	if _, err := c.st.Create(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func eventCluster(t *testing.T) *cluster {
	c := newCluster(t)
	web, lb := events.Ref(v1.KindService, "web"), events.Ref(v1.KindLease, "lb")
	putEvent(t, c, "web-1", web, v1.EventNormal, v1.EventScheduled, "replica 0 placed on node n1", "n1", 1, 12*time.Minute, 12*time.Minute)
	putEvent(t, c, "web-2", web, v1.EventWarning, v1.EventExited, "replica 0 exited with code 137\nlast line", "n1", 3, 10*time.Minute, 30*time.Second)
	putEvent(t, c, "lb-1", lb, v1.EventNormal, v1.EventLeaseAcquired, "node n2 acquired the lease", "n2", 1, 5*time.Minute, 5*time.Minute)
	return c
}

func TestGetEvents(t *testing.T) {
	c := eventCluster(t)
	// Least recently seen first; a message on one line.
	expect(t, c.run(t, "", "get", "events"), 0,
		"LAST SEEN   TYPE      REASON          OBJECT        COUNT   MESSAGE\n"+
			"12m         Normal    Scheduled       service/web   1       replica 0 placed on node n1\n"+
			"5m          Normal    LeaseAcquired   lease/lb      1       node n2 acquired the lease\n"+
			"30s         Warning   Exited          service/web   3       replica 0 exited with code 137 last line\n", "")
	expect(t, c.run(t, "", "get", "ev", "--for", "svc/web", "-o", "wide"), 0,
		"LAST SEEN   TYPE      REASON      OBJECT        COUNT   MESSAGE                                    NODE   COMPONENT   FIRST SEEN   NAME\n"+
			"12m         Normal    Scheduled   service/web   1       replica 0 placed on node n1                n1     node        12m          web-1\n"+
			"30s         Warning   Exited      service/web   3       replica 0 exited with code 137 last line   n1     node        10m          web-2\n", "")
	expect(t, c.run(t, "", "get", "events", "--for", "lease/lb", "-l", v1.LabelEventKind+"=Lease"), 0,
		"LAST SEEN   TYPE     REASON          OBJECT     COUNT   MESSAGE\n"+
			"5m          Normal   LeaseAcquired   lease/lb   1       node n2 acquired the lease\n", "")
	expect(t, c.run(t, "", "get", "events", "--for", "svc/other"), 0, "", "No resources found.\n")
}

func TestGetEventsErrors(t *testing.T) {
	c := eventCluster(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"get", "svc", "--for", "svc/web"}, "error: --for: only with `get events`\n"},
		{[]string{"get", "events", "--for", "web"}, "error: --for: want KIND/NAME like svc/web, got \"web\"\n"},
		{[]string{"get", "events", "--for", "pods/web"}, "error: --for: unknown kind \"pods\" (known: configs, cronjobs, dnsrecords, events, jobs, leases, nodes, replicasets, secrets, services, routes; short: svc, dns, rs, no, ev, cm, cj)\n"},
		{[]string{"get", "events", "--for", "svc/Web_1"}, "error: --for: \"Web_1\" is not an object name\n"},
	} {
		expect(t, c.run(t, "", tc.args...), 1, "", tc.err)
	}
}

func TestDescribeShowsEvents(t *testing.T) {
	c := eventCluster(t)
	c.run(t, helloV2, "apply", "-f", "-")
	web := strings.Replace(helloV2, `"name":"hello"`, `"name":"web"`, 1)
	web = strings.Replace(web, "hello.example.com", "web.example.com", 1)
	if r := c.run(t, web, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	r := c.run(t, "", "describe", "svc", "web")
	want := "Events:\n" +
		"  Type     Reason     Age                From       Message\n" +
		"  ----     ------     ----               ----       -------\n" +
		"  Normal   Scheduled  12m                node (n1)  replica 0 placed on node n1\n" +
		"  Warning  Exited     30s (x3 over 10m)  node (n1)  replica 0 exited with code 137 last line\n"
	if r.code != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Fatalf("describe svc web (exit %d):\n%s\nwant it to end with:\n%s", r.code, r.stdout, want)
	}
	r = c.run(t, "", "describe", "svc", "hello")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "\nEvents:  <none>\n") {
		t.Fatalf("describe svc hello:\n%s", r.stdout)
	}
}

// The whole path in one process: a recorder writes to the store, the API serves it, `get
// events -w` prints the Event when it appears and again when its count grows.
func TestGetEventsWatchFromRecorder(t *testing.T) {
	c := newCluster(t)
	clk := clocktesting.NewFakeClock(ctlNow.Add(-time.Minute))
	rec, err := events.New(events.Config{Store: c.st, Node: "n1", Clock: clk, Debounce: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() {
		done <- ctl.Run(ctx, []string{"get", "events", "-w", "--for", "svc/web"}, c.env("", &out, &errb, nil))
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s\nstderr: %s", s, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("LAST SEEN   TYPE   REASON   OBJECT   COUNT   MESSAGE\n")
	web := events.Ref(v1.KindService, "web")
	rec.Eventf(web, v1.EventWarning, v1.EventRestarted, "node", "replica 1 restarted after exit code 2")
	rec.Eventf(events.Ref(v1.KindService, "api"), v1.EventNormal, v1.EventStarted, "node", "replica 0 started") // not for web
	rec.Flush(ctx)
	waitFor("60s         Warning   Restarted   service/web   1       replica 1 restarted after exit code 2\n")
	clk.Step(2 * time.Second)
	rec.Eventf(web, v1.EventWarning, v1.EventRestarted, "node", "replica 1 restarted after exit code 2")
	rec.Flush(ctx)
	waitFor("58s         Warning   Restarted   service/web   2       replica 1 restarted after exit code 2\n")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("get -w ended with %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "service/api") {
		t.Fatalf("--for let another object's event through:\n%s", out.String())
	}
}
