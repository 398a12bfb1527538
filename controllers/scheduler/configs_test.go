package scheduler

import (
	"context"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

func config(name string, data map[string]string) *v1.Config {
	return &v1.Config{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindConfig}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ConfigSpec{Data: data}}
}

func putConfig(t *testing.T, st store.Store, c *v1.Config) {
	t.Helper()
	if _, err := st.Get(context.Background(), v1.KindConfig, c.Metadata.Name); err == nil {
		if _, err := st.Update(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := st.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func withFiles(svc *v1.Service, files ...v1.FileMount) *v1.Service {
	svc.Spec.Files = append(svc.Spec.Files, files...)
	return svc
}

// While Run runs, a change of a Config (or of a Secret) that spec.files reads is a new
// revision of the Services reading it; a change of a Config nobody reads, or of a key a
// Service does not read, changes no revision.
func TestRunRollsOnFileSourceChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	addNode(t, st, "a")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true})
	s, err := New(Config{Store: st, View: view, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	putConfig(t, st, config("prom", map[string]string{"prometheus.yml": "v1", "rules.yml": "r1"}))
	putConfig(t, st, config("unrelated", map[string]string{"x": "1"}))
	putSecret(t, st, secret("tls", map[string]string{"key.pem": "k1"}))
	for _, svc := range []*v1.Service{
		withFiles(service("prometheus", 1), v1.FileMount{Config: "prom", Key: "prometheus.yml", Path: "/etc/prometheus/prometheus.yml"}),
		withFiles(service("proxy", 1), v1.FileMount{Secret: "tls"}),
		service("plain", 1),
	} {
		if _, err := st.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	rev := func(name string) string {
		if r := getSvc(t, st, name).Status.CurrentRevision; r != nil {
			return r.SpecHash
		}
		return ""
	}
	eventually(t, "first revisions", func() bool { return rev("prometheus") != "" && rev("proxy") != "" && rev("plain") != "" })
	if got, want := rev("plain"), spechash.Of(&getSvc(t, st, "plain").Spec); got != want {
		t.Fatalf("a Service without files: revision %q, want its spec hash %q", got, want)
	}
	barrier := func(n int32) {
		// The loop has one worker and a FIFO queue: once a later change of another Service is
		// planned, whatever the earlier writes queued has run.
		b := getSvc(t, st, "plain")
		b.Spec.Replicas = &n
		if _, err := st.Update(ctx, b); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the barrier planned", func() bool { return len(getSvc(t, st, "plain").Status.Assignments) == int(n) })
	}
	barrier(2)
	prom, proxy := rev("prometheus"), rev("proxy")

	putConfig(t, st, config("unrelated", map[string]string{"x": "2"}))
	putConfig(t, st, config("prom", map[string]string{"prometheus.yml": "v1", "rules.yml": "r2"})) // a key it does not read
	barrier(3)
	if got := rev("prometheus"); got != prom {
		t.Fatalf("unrelated changes rolled prometheus: %q, was %q", got, prom)
	}

	putConfig(t, st, config("prom", map[string]string{"prometheus.yml": "v2", "rules.yml": "r2"}))
	eventually(t, "prometheus's new revision", func() bool { return rev("prometheus") != prom })
	if spechash.SpecPart(rev("prometheus")) != spechash.SpecPart(prom) {
		t.Fatal("the spec part of the revision changed with the Config's content")
	}
	if got := rev("proxy"); got != proxy {
		t.Fatalf("proxy rolled on a Config it does not read: %q, was %q", got, proxy)
	}
	putSecret(t, st, secret("tls", map[string]string{"key.pem": "k2"}))
	eventually(t, "proxy's new revision", func() bool { return rev("proxy") != proxy })
}
