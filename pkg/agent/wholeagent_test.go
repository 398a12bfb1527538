package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/docker/dockertest"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/pkg/traefik"
)

// TestWholeAgentsOnFakeEngines runs three whole agents in one process, each on an in-memory
// engine (pkg/docker/dockertest), with no dockerd: a Service of three replicas applied through
// the API is placed by the scheduler, created by each node's reconciler in its engine, carried
// by gossip, marked Ready by the status controller, and served by the Traefik provider with
// the replicas' addresses as servers. A replica whose container dies is started again and
// routed again.
func TestWholeAgentsOnFakeEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents with raft stores; run without -short")
	}
	withRaft := raftAgents(t)
	names := []string{"n1", "n2", "n3"}
	engines := map[string]*dockertest.Engine{}
	agents := map[string]*Agent{}
	for i, name := range names {
		// One loopback address for all three: host ports far apart keep their servers apart.
		engines[name] = dockertest.New(dockertest.Options{FirstHostPort: 41000 + 1000*i})
		join := ""
		if i > 0 {
			join = agents["n1"].APIAddress()
		}
		_, a := startAgentWith(t, name, func(c *config.Config) {
			withRaft(join)(c)
			c.Docker.Disabled = false
		}, Options{Engine: engines[name]})
		agents[name] = a
	}
	c, err := client.New(client.Config{Server: agents["n1"].APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range names {
		eventually(t, "nodes/"+name+" Ready", func() bool {
			o, err := c.Get(ctx, v1.KindNode, name)
			if err != nil {
				return false
			}
			cond := v1.FindCondition(o.(*v1.Node).Status.Conditions, v1.NodeReady)
			return cond != nil && cond.Status == v1.ConditionTrue
		})
	}

	svc := spec.Service("web", "registry.local/web:1", spec.Replicas(3), spec.Port("http", 8080),
		spec.HTTPRoute("web.example.com", "/", "http"))
	svc.Default()
	if _, err := c.Put(ctx, svc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	// running lists the "http://advertise:hostPort" of web's running containers on every node.
	running := func() []string {
		var out []string
		for _, name := range names {
			for _, ct := range engines[name].Containers() {
				if ct.Labels[docker.LabelService] == "web" && ct.Running {
					out = append(out, "http://"+agents[name].cfg.Node.AdvertiseAddress+":"+ct.Ports["8080/tcp"].Port)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	eventually(t, "one running container of web on each node", func() bool {
		for _, name := range names {
			n := 0
			for _, ct := range engines[name].Containers() {
				if ct.Labels[docker.LabelService] == "web" && ct.Running {
					n++
				}
			}
			if n != 1 {
				return false
			}
		}
		return true
	})
	for _, name := range names {
		if got := engines[name].Pulls(); !slices.Equal(got, []string{"registry.local/web:1"}) {
			t.Errorf("%s pulled %v, want the image once", name, got)
		}
	}
	want := running()
	serviceReady(t, c)
	for _, name := range names {
		eventually(t, "the replicas' addresses as servers in "+name+"'s provider", func() bool {
			return slices.Equal(providerServers(t, agents[name], "web.example.com"), want)
		})
	}

	// A container dies: its node's reconciler starts it again (backoff 1s) and it is routed again.
	var victim docker.Container
	for _, ct := range engines["n2"].Containers() {
		if ct.Labels[docker.LabelService] == "web" {
			victim = ct
		}
	}
	if err := engines["n2"].Kill(victim.ID, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the dead replica out of the provider", func() bool {
		return len(providerServers(t, agents["n1"], "web.example.com")) == 2
	})
	eventually(t, "web running again on n2", func() bool {
		for _, ct := range engines["n2"].Containers() {
			if ct.Labels[docker.LabelService] == "web" && ct.Running && ct.StartedAt.After(victim.StartedAt) {
				return true
			}
		}
		return false
	})
	want = running()
	if len(want) != 3 {
		t.Fatalf("running after the restart: %v, want 3", want)
	}
	eventually(t, "three servers again", func() bool {
		return slices.Equal(providerServers(t, agents["n1"], "web.example.com"), want)
	})
	serviceReady(t, c)
}

func serviceReady(t *testing.T, c *client.Client) {
	t.Helper()
	eventually(t, "services/web Ready", func() bool {
		o, err := c.Get(context.Background(), v1.KindService, "web")
		if err != nil {
			return false
		}
		st := o.(*v1.Service).Status
		cond := v1.FindCondition(st.Conditions, v1.ServiceReady)
		return cond != nil && cond.Status == v1.ConditionTrue && len(st.Assignments) == 3
	})
}

// providerServers returns the sorted server URLs behind the router of host in a's Traefik
// provider configuration (nil while it has none).
func providerServers(t *testing.T, a *Agent, host string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.APIURL()+traefik.ProviderPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer cluster-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var cfg traefik.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("provider configuration: %v\n%s", err, b)
	}
	if cfg.HTTP == nil {
		return nil
	}
	services := map[string]bool{} // an http and an https router share one service
	for _, r := range cfg.HTTP.Routers {
		if strings.Contains(r.Rule, "Host(`"+host+"`)") {
			services[r.Service] = true
		}
	}
	var out []string
	for name := range services {
		if s := cfg.HTTP.Services[name]; s != nil && s.LoadBalancer != nil {
			for _, srv := range s.LoadBalancer.Servers {
				out = append(out, srv.URL)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestJobOnAFakeEngine runs a Job on one agent whose engine is the fake, which has the Job
// runner's CopyFiles: the container is created and started there, and exiting 0 (the fake's
// processes run until killed) completes the Job.
func TestJobOnAFakeEngine(t *testing.T) {
	e := dockertest.New(dockertest.Options{})
	_, a := startAgentWith(t, "n1", func(c *config.Config) { c.Docker.Disabled = false }, Options{Engine: e})
	c, err := client.New(client.Config{Server: a.APIAddress()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j := &v1.Job{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindJob}, Metadata: v1.ObjectMeta{Name: "migrate"},
		Spec: v1.JobSpec{Image: "registry.local/migrate:1"}}
	j.Default()
	if _, err := c.Put(ctx, j, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var id string
	eventually(t, "the Job's container running in the fake engine", func() bool {
		for _, ct := range e.Containers() {
			if ct.Labels[docker.LabelJob] == "migrate" && ct.Running {
				id = ct.ID
				return true
			}
		}
		return false
	})
	if err := e.Kill(id, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Job Succeeded", func() bool {
		o, err := c.Get(ctx, v1.KindJob, "migrate")
		return err == nil && o.(*v1.Job).Status.Phase == v1.JobSucceeded
	})
}
