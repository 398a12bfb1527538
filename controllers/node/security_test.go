package node

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
)

// TestCrashLogIsScrubbedOfSecrets: a container that prints its secret env value before it
// crashes ends up with the value redacted in the replica status it publishes, and so is every
// other value of the Secrets the Service references; the rest of the line stays.
func TestCrashLogIsScrubbedOfSecrets(t *testing.T) {
	f := newFixture(t)
	sec := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: "db"},
		Spec: v1.SecretSpec{Data: v1.SecretData{"password": "hunter2-s3cret", "user": "admin-user-xyz"}}}
	if _, err := f.st.Create(f.ctx, sec); err != nil {
		t.Fatal(err)
	}
	f.dock.logTail = func(env []string) string {
		return "connecting as admin-user-xyz\nfatal: auth failed for " + strings.Join(env, " ")
	}
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.Env = []v1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "DB_PASSWORD", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "password"}}}
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("not running: %+v", f.published)
	}
	// The container really got the value (so its log really holds it).
	if env := strings.Join(f.dock.created[0].Config.Env, " "); !strings.Contains(env, "DB_PASSWORD=hunter2-s3cret") {
		t.Fatalf("env %q", env)
	}
	for round := 1; round <= 3; round++ { // Exited, then CrashLoop: both messages are scrubbed
		f.dock.crash(f.published[0].ContainerID, 1)
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
		rep := f.published[0]
		want := "exit code 1: connecting as <redacted>\nfatal: auth failed for MODE=prod DB_PASSWORD=<redacted>"
		if rep.Message != want || strings.Contains(rep.Message, "hunter2") {
			t.Fatalf("round %d: message %q, want %q", round, rep.Message, want)
		}
		f.clk.Step(2 * time.Minute) // past the backoff: started again
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNodeEnforcesItsOwnHostAccessFlags: the node that would run a replica checks the Service
// against its own agent's flags: a replica it does not allow is never created, and its status
// says why, naming the field and the flag. The same Service runs on a node that allows it.
func TestNodeEnforcesItsOwnHostAccessFlags(t *testing.T) {
	cases := []struct {
		name   string
		policy hostaccess.Policy
		spec   func(*v1.ServiceSpec)
		// refusal parts; none: created.
		want []string
	}{
		{"docker socket refused", hostaccess.Policy{}, func(sp *v1.ServiceSpec) {
			sp.HostAccess = true
			sp.Volumes = []v1.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}, []string{"spec.volumes[0].source", `refused by node "n1"`, "--security.allowHostAccess", "--security.hostPaths"}},
		{"privileged refused", hostaccess.Policy{HostPaths: []string{"/"}}, func(sp *v1.ServiceSpec) {
			sp.HostAccess, sp.Privileged = true, true
		}, []string{"spec.privileged", "--security.allowHostAccess"}},
		{"bind without opt-in refused", hostaccess.Policy{AllowHostAccess: true}, func(sp *v1.ServiceSpec) {
			sp.Volumes = []v1.VolumeMount{{Source: "/srv/www", Target: "/www"}}
		}, []string{"spec.volumes[0].source", "set spec.hostAccess: true"}},
		{"docker socket allowed", hostaccess.Policy{AllowHostAccess: true}, func(sp *v1.ServiceSpec) {
			sp.HostAccess = true
			sp.Volumes = []v1.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}, nil},
		{"listed path allowed", hostaccess.Policy{HostPaths: []string{"/etc/ssl"}}, func(sp *v1.ServiceSpec) {
			sp.HostAccess = true
			sp.Volumes = []v1.VolumeMount{{Source: "/etc/ssl/certs", Target: "/certs", ReadOnly: true}}
		}, nil},
		{"privileged allowed", hostaccess.Policy{AllowHostAccess: true}, func(sp *v1.ServiceSpec) {
			sp.HostAccess, sp.Privileged = true, true
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, func(c *Config) {
				c.HostAccess = tc.policy
				// Hermetic: the test machine's own symlinks play no part.
				c.HostAccess.Resolve = func(p string) (string, error) { return p, nil }
			})
			f.serviceWith(1, "echo:1", tc.spec)
			_ = f.reconcile() // a refused create is the replica's failure, not the pass's
			if tc.want == nil {
				if f.running() != 1 {
					t.Fatalf("not created: %+v", f.published)
				}
				return
			}
			if len(f.dock.created) != 0 {
				t.Fatalf("created %d containers", len(f.dock.created))
			}
			if len(f.published) != 1 {
				t.Fatalf("published %+v", f.published)
			}
			rep := f.published[0]
			if rep.State != v1.ReplicaFailed || rep.Reason != v1.ReasonHostAccessDenied {
				t.Fatalf("replica %+v", rep)
			}
			for _, p := range tc.want {
				if !strings.Contains(rep.Message, p) {
					t.Errorf("message %q does not say %q", rep.Message, p)
				}
			}
			// Still refused after the backoff: never created on this node.
			f.clk.Step(5 * time.Minute)
			_ = f.reconcile()
			if len(f.dock.created) != 0 || f.published[0].Reason != v1.ReasonHostAccessDenied {
				t.Fatalf("after backoff: created %d, %+v", len(f.dock.created), f.published[0])
			}
		})
	}
}

// TestStricterAgentDoesNotStartOldContainerAgain: a container created while the agent allowed
// its host access keeps running when the agent restarts with stricter flags, but once it exits
// it is not started again: its status says why.
func TestStricterAgentDoesNotStartOldContainerAgain(t *testing.T) {
	lexical := func(p string) (string, error) { return p, nil }
	f := newFixtureWith(t, func(c *Config) { c.HostAccess = hostaccess.Policy{AllowHostAccess: true, Resolve: lexical} })
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) { sp.HostAccess, sp.HostPID = true, true })
	if err := f.reconcile(); err != nil || f.running() != 1 {
		t.Fatalf("err %v, running %d", err, f.running())
	}
	f.restart(func(c *Config) { c.HostAccess = hostaccess.Policy{Resolve: lexical} })
	if err := f.reconcile(); err != nil || f.running() != 1 {
		t.Fatalf("a running container was touched: err %v, running %d", err, f.running())
	}
	f.dock.crash(f.published[0].ContainerID, 1)
	for range 3 {
		_ = f.reconcile()
		f.clk.Step(2 * time.Minute)
	}
	rep := f.published[0]
	if f.running() != 0 || rep.Reason != v1.ReasonHostAccessDenied || !strings.Contains(rep.Message, "spec.hostPID") ||
		!strings.Contains(rep.Message, "--security.allowHostAccess") {
		t.Fatalf("running %d, replica %+v", f.running(), rep)
	}
}

// TestHostNetworkReplicaAddress: a hostNetwork replica publishes nothing; its address is the
// node's advertise address with the container port, and the agent probes it on loopback.
func TestHostNetworkReplicaAddress(t *testing.T) {
	f := newFixtureWith(t, func(c *Config) { c.HostAccess = hostaccess.Policy{AllowHostAccess: true} })
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.HostAccess, sp.HostNetwork = true, true
		sp.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: v1.ProtocolUDP}}
		sp.Placement = &v1.Placement{MaxPerNode: 1}
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 || len(f.dock.created) != 1 {
		t.Fatalf("running %d, published %+v", f.running(), f.published)
	}
	if hc := f.dock.created[0].HostConfig; hc.NetworkMode != "host" || len(hc.PortBindings) != 0 {
		t.Fatalf("network mode %q, bindings %v", hc.NetworkMode, hc.PortBindings)
	}
	rep := f.published[0]
	if rep.Ports["8080/tcp"] != "10.0.0.1:8080" || rep.Ports["53/udp"] != "10.0.0.1:53" || len(rep.Ports) != 2 {
		t.Fatalf("ports %v", rep.Ports)
	}
	cs, _ := f.dock.List(f.ctx, nil)
	if addr, err := containerAddr(cs[0], 8080); err != nil || addr != "127.0.0.1:8080" {
		t.Fatalf("probe address %q, %v", addr, err)
	}
}
