package agent

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// TestAgentRecordsEvents runs a whole agent (no Docker): its Events reach the store through
// the recorder it wires, and ctl reads them through the API: the controller Lease acquired,
// and a Service that finds no node (the only node runs no containers) FailedScheduling.
func TestAgentRecordsEvents(t *testing.T) {
	a, c := startAgent(t, "n1", nil)
	ctx := context.Background()
	eventually(t, "the controller lease", a.controllerLease.IsLeader)
	svc := spec.Service("web", "registry.local/web:1", spec.Port("http", 8080))
	svc.Default()
	if _, err := c.Put(ctx, svc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		env := ctl.Env{In: strings.NewReader(""), Out: &out, Err: &errb, Now: time.Now,
			Getenv: func(k string) string {
				if k == ctl.EnvServer {
					return a.APIURL()
				}
				return ""
			}}
		if code := ctl.Run(ctx, args, env); code != 0 {
			t.Fatalf("ctl %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	eventually(t, "FailedScheduling for svc/web", func() bool {
		return strings.Contains(run("get", "events", "--for", "svc/web"), "Warning   FailedScheduling   service/web   1       1 replica(s) found no node")
	})
	eventually(t, "LeaseAcquired for the controller lease", func() bool {
		return strings.Contains(run("get", "events", "--for", "lease/"+v1.LeaseController), "LeaseAcquired   lease/controller   1       node n1 acquired the lease")
	})
	if d := run("describe", "svc", "web"); !strings.Contains(d, "\nEvents:\n") || !strings.Contains(d, "FailedScheduling") {
		t.Fatalf("describe svc web:\n%s", d)
	}
}
