package runtime

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"reflect"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
)

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// inspected is the part of `docker inspect` the container options show in.
type inspected struct {
	Config struct {
		User        string
		WorkingDir  string
		StopSignal  string
		StopTimeout *int
		Labels      map[string]string
	}
	HostConfig struct {
		IpcMode        string
		ReadonlyRootfs bool
		ShmSize        int64
		Init           *bool
		ExtraHosts     []string
		Sysctls        map[string]string
		CapDrop        []string
		Ulimits        []struct {
			Name       string
			Soft, Hard int64
		}
		Devices []struct {
			PathOnHost, PathInContainer, CgroupPermissions string
		}
		LogConfig struct {
			Type   string
			Config map[string]string
		}
		PortBindings map[string][]struct{ HostIp, HostPort string }
	}
	Mounts []struct {
		Type, Destination string
	}
}

// TestContainerOptionsOnRealDocker: a Service using every container option and a fixed host
// port runs on the local engine, `docker inspect` shows each option, the host port answers,
// and a stop waits the spec's grace period's signal (SIGINT stops the echo server at once).
func TestContainerOptionsOnRealDocker(t *testing.T) {
	c := newClusterWith(t, 1, hostaccess.Policy{HostPaths: []string{"/dev/zero"}})
	port := freePort(t)
	sp := echoSpec("constellation-test/echo:1", 1)
	sp.Replicas = nil
	sp.Mode = v1.ModeGlobal
	sp.Ports[0].HostPort = port
	sp.HostAccess, sp.HostIPC = true, false
	sp.CapDrop = []string{"NET_RAW"}
	sp.ContainerOptions = v1.ContainerOptions{
		User: "65534:65534", WorkingDir: "/work",
		Devices: []v1.Device{{HostPath: "/dev/zero", ContainerPath: "/dev/zero2", Permissions: "r"}},
		Sysctls: map[string]string{"net.core.somaxconn": "512"},
		Tmpfs:   []v1.TmpfsMount{{Target: "/work", SizeMB: 8, Mode: 0o1777}},
		// FROM scratch: the echo server writes nothing, so a read-only root is fine.
		ReadOnlyRootFilesystem: true,
		Ulimits:                []v1.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
		ExtraHosts:             []v1.ExtraHost{{Host: "db.local", IP: "10.1.2.3"}},
		Init:                   true, StopSignal: "SIGINT", StopGracePeriod: &v1.Duration{Duration: 3 * time.Second},
		ShmSizeMB: 32, Labels: map[string]string{"com.example.team": "infra"},
		Logging: &v1.Logging{Driver: "local", Options: map[string]string{"max-size": "5m"}},
	}
	c.apply("opts", sp)
	c.waitFor("the options replica ready", 60*time.Second, c.converged("opts"))
	reps := c.replicas("opts")
	if len(reps) != 1 {
		t.Fatalf("replicas %+v", reps)
	}
	out, err := exec.Command("docker", "inspect", reps[0].ContainerID).Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	var got []inspected
	if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect output: %v", err)
	}
	in := got[0]
	check := func(what string, have, want any) {
		t.Helper()
		if !reflect.DeepEqual(have, want) {
			t.Errorf("%s: docker inspect shows %#v, want %#v", what, have, want)
		}
	}
	check("user", in.Config.User, "65534:65534")
	check("workingDir", in.Config.WorkingDir, "/work")
	check("stopSignal", in.Config.StopSignal, "SIGINT")
	check("stopTimeout", fmt.Sprint(deref(in.Config.StopTimeout)), "3")
	check("label", in.Config.Labels["com.example.team"], "infra")
	check("readOnly", in.HostConfig.ReadonlyRootfs, true)
	check("shmSize", in.HostConfig.ShmSize, int64(32<<20))
	check("init", in.HostConfig.Init != nil && *in.HostConfig.Init, true)
	check("extraHosts", in.HostConfig.ExtraHosts, []string{"db.local:10.1.2.3"})
	check("sysctls", in.HostConfig.Sysctls, map[string]string{"net.core.somaxconn": "512"})
	check("capDrop", in.HostConfig.CapDrop, []string{"CAP_NET_RAW"})
	check("ulimits", fmt.Sprint(in.HostConfig.Ulimits), "[{nofile 1024 2048}]")
	check("devices", fmt.Sprint(in.HostConfig.Devices), "[{/dev/zero /dev/zero2 r}]")
	check("logging", in.HostConfig.LogConfig.Type+fmt.Sprint(in.HostConfig.LogConfig.Config), "localmap[max-size:5m]")
	check("hostPort", fmt.Sprint(in.HostConfig.PortBindings["8080/tcp"]), fmt.Sprintf("[{127.0.0.1 %d}]", port))
	tmpfs := false
	for _, m := range in.Mounts {
		tmpfs = tmpfs || (m.Type == "tmpfs" && m.Destination == "/work")
	}
	if !tmpfs {
		t.Errorf("no tmpfs at /work in %+v", in.Mounts)
	}
	// The fixed host port serves.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		t.Fatalf("host port %d: %v", port, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("host port %d: %s", port, resp.Status)
	}
	if a := reps[0].Ports["8080/tcp"]; a != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("observed address of the port %q, want the host port %d", a, port)
	}
	if got := c.get("opts").Status.DesiredReplicas; got != 1 {
		t.Errorf("global service on one node: status.desiredReplicas %d, want 1", got)
	}
}

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// TestDependsOnHealthyOnRealDocker: a Service that depends on a healthy database gets no
// container until the database's replica passes its health check (the status fold's
// readyReplicas), then starts.
func TestDependsOnHealthyOnRealDocker(t *testing.T) {
	c := newCluster(t)
	app := echoSpec("constellation-test/echo:1", 1)
	app.DependsOn = []v1.Dependency{{Service: "db", Condition: v1.DependencyHealthy}}
	c.apply("app", app)
	c.waitFor("app held back", 20*time.Second, func() (bool, string) {
		cond := v1.FindCondition(c.get("app").Status.Conditions, v1.ServiceProgressing)
		return cond != nil && cond.Reason == v1.ReasonWaitingForDependency &&
			cond.Message == "1 of 1 replicas wait for spec.dependsOn: services/db does not exist", fmt.Sprintf("%+v", cond)
	})
	db := echoSpec("constellation-test/slowstart:1", 1)
	db.Env = []v1.EnvVar{{Name: "START_DELAY", Value: "2s"}}
	db.HealthCheck.StartPeriod = &v1.Duration{Duration: 10 * time.Second}
	c.apply("db", db)
	// While db runs but is not healthy yet, app stays without a container.
	c.waitFor("db running, not ready", 30*time.Second, func() (bool, string) {
		for _, r := range c.replicas("db") {
			if r.State == v1.ReplicaRunning && !r.Ready() {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", c.replicas("db"))
	})
	if n := len(c.replicas("app")); n != 0 || len(c.get("app").Status.Assignments) != 0 {
		t.Fatalf("app placed before db was healthy: %d replicas, %+v", n, c.get("app").Status.Assignments)
	}
	c.waitFor("db ready", 30*time.Second, func() (bool, string) {
		d := c.get("db")
		return d.Status.ReadyReplicas >= 1, fmt.Sprintf("db status %+v; view %+v", d.Status, c.replicas("db"))
	})
	c.waitFor("db ready, then app ready", 60*time.Second, c.converged("app"))
	if c.get("db").Status.ReadyReplicas < 1 {
		t.Fatal("app converged while db is not ready")
	}
}
