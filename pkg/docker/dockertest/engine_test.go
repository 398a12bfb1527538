package dockertest

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// createConfig is what BuildCreateConfig makes of a Service with one HTTP port on network.
func createConfig(t *testing.T, name, image, net string) docker.CreateConfig {
	t.Helper()
	port, ok := network.PortFrom(8080, network.TCP)
	if !ok {
		t.Fatal("port")
	}
	return docker.CreateConfig{
		Name:   name,
		Config: &container.Config{Image: image, Labels: map[string]string{docker.LabelService: "web", docker.LabelNode: "n1"}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(net),
			PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr("0.0.0.0")}}}},
	}
}

func TestLifecycleAsTheEngineReportsIt(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	e := New(Options{Now: func() time.Time { return now }, FirstHostPort: 41000})

	if _, err := e.Create(ctx, createConfig(t, "web-0", "web:1", "bridge")); !errors.Is(err, docker.ErrImageNotFound) {
		t.Fatalf("create without the image: %v, want ErrImageNotFound", err)
	}
	if ok, _ := e.HasImage(ctx, "web:1"); ok {
		t.Fatal("image present before the pull")
	}
	if err := e.PullImage(ctx, "web:1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(ctx, createConfig(t, "web-0", "web:1", "cst")); !errors.Is(err, docker.ErrNotFound) {
		t.Fatalf("create on a missing network: %v, want ErrNotFound", err)
	}
	if err := e.EnsureNetwork(ctx, "cst"); err != nil {
		t.Fatal(err)
	}
	id, err := e.Create(ctx, createConfig(t, "web-0", "web:1", "cst"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(ctx, createConfig(t, "web-0", "web:1", "cst")); !errors.Is(err, docker.ErrNameConflict) {
		t.Fatalf("second create of web-0: %v, want ErrNameConflict", err)
	}
	cs, _ := e.List(ctx, map[string]string{docker.LabelService: "web"})
	if len(cs) != 1 || cs[0].State != "created" || cs[0].Running || cs[0].Ports != nil {
		t.Fatalf("created: %+v, want one created container without ports", cs)
	}
	now = now.Add(time.Second)
	if err := e.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	c := e.Containers()[0]
	if !c.Running || c.State != "running" || !c.StartedAt.Equal(now) || c.Ports["8080/tcp"] != (docker.HostPort{IP: "0.0.0.0", Port: "41000"}) || c.Networks["cst"] == "" {
		t.Fatalf("running: %+v, want running on an ephemeral port with an address", c)
	}
	if cs, _ := e.List(ctx, map[string]string{docker.LabelService: "db"}); len(cs) != 0 {
		t.Fatalf("list by another label: %+v", cs)
	}

	now = now.Add(time.Second)
	if err := e.Kill(id, 137); err != nil {
		t.Fatal(err)
	}
	c = e.Containers()[0]
	if c.Running || c.State != "exited" || c.ExitCode != 137 || !c.FinishedAt.Equal(now) || c.Ports != nil {
		t.Fatalf("killed: %+v, want exited 137 without ports and nothing restarting it", c)
	}
	if err := e.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if c := e.Containers()[0]; c.Running || c.ExitCode != 0 {
		t.Fatalf("stopped: %+v", c)
	}
	if err := e.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, id); err != nil {
		t.Fatalf("removing a container already gone: %v, want nil", err)
	}
	if err := e.Start(ctx, id); !errors.Is(err, docker.ErrNotFound) {
		t.Fatalf("start after remove: %v, want ErrNotFound", err)
	}
	if got := e.Networks(); !slices.Contains(got, "cst") {
		t.Fatalf("networks %v", got)
	}
	if err := e.EnsureVolume(ctx, "data"); err != nil {
		t.Fatal(err)
	}
	if got := e.Volumes(); !slices.Equal(got, []string{"data"}) {
		t.Fatalf("volumes %v", got)
	}
}

func TestHostNetworkAndFixedPorts(t *testing.T) {
	ctx := context.Background()
	e := New(Options{Images: []string{"web:1"}})
	hc := createConfig(t, "h", "web:1", "host")
	hc.HostConfig.PortBindings = nil
	id, err := e.Create(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	_ = e.Start(ctx, id)
	if c := e.Containers()[0]; c.Ports != nil || len(c.Networks) != 1 || c.Networks["host"] != "" {
		t.Fatalf("host network: %+v, want no ports and the host network without an address", c)
	}

	fixed := func(name string) docker.CreateConfig {
		cfg := createConfig(t, name, "web:1", "bridge")
		for p := range cfg.HostConfig.PortBindings {
			cfg.HostConfig.PortBindings[p][0].HostPort = "8080"
		}
		return cfg
	}
	a, _ := e.Create(ctx, fixed("a"))
	b, _ := e.Create(ctx, fixed("b"))
	if err := e.Start(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, b); !errors.Is(err, docker.ErrPortConflict) {
		t.Fatalf("second container on host port 8080: %v, want ErrPortConflict", err)
	}
}

func TestPullable(t *testing.T) {
	e := New(Options{Pullable: func(ref string) bool { return ref == "ok:1" }})
	ctx := context.Background()
	if err := e.PullImage(ctx, "gone:1", nil); !errors.Is(err, docker.ErrImageNotFound) {
		t.Fatalf("pull of an unpullable image: %v", err)
	}
	var progress []docker.PullProgress
	if err := e.PullImage(ctx, "ok:1", func(p docker.PullProgress) { progress = append(progress, p) }); err != nil || len(progress) == 0 {
		t.Fatalf("pull: %v, progress %v", err, progress)
	}
	if ok, _ := e.HasImage(ctx, "ok:1"); !ok {
		t.Fatal("pulled image absent")
	}
	if got := e.Pulls(); !slices.Equal(got, []string{"gone:1", "ok:1"}) {
		t.Fatalf("pulls %v", got)
	}
}

func TestEventsByLabelsAndDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := New(Options{Images: []string{"web:1"}})
	evs, errc := e.Events(ctx, map[string]string{docker.LabelService: "web"})
	other, _ := e.Events(ctx, map[string]string{docker.LabelService: "db"})
	id, err := e.Create(ctx, createConfig(t, "web-0", "web:1", "bridge"))
	if err != nil {
		t.Fatal(err)
	}
	_ = e.Start(ctx, id)
	_ = e.Kill(id, 1)
	_ = e.Remove(ctx, id)
	var actions []string
	for range 4 {
		select {
		case ev := <-evs:
			if ev.ContainerID != id || ev.Labels[docker.LabelService] != "web" {
				t.Fatalf("event %+v", ev)
			}
			actions = append(actions, ev.Action)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", actions)
		}
	}
	if !slices.Equal(actions, []string{"create", "start", "die", "destroy"}) {
		t.Fatalf("actions %v", actions)
	}
	select {
	case ev := <-other:
		t.Fatalf("a db subscriber got %+v", ev)
	default:
	}

	e.SetDown(true)
	select {
	case err := <-errc:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("stream end: %v, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived the engine")
	}
	if _, err := e.List(ctx, nil); !errors.Is(err, docker.ErrUnavailable) {
		t.Fatalf("list while down: %v", err)
	}
	if err := e.Ping(ctx); !errors.Is(err, docker.ErrUnavailable) {
		t.Fatalf("ping while down: %v", err)
	}
	if _, errc := e.Events(ctx, nil); !errors.Is(<-errc, docker.ErrUnavailable) {
		t.Fatal("events while down")
	}
	e.SetDown(false)
	if err := e.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEventsEndWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e := New(Options{})
	evs, errc := e.Events(ctx, nil)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("end: %v", err)
	}
	if _, open := <-evs; open {
		t.Fatal("events channel left open")
	}
}
