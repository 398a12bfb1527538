package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAgainstAPIServer runs the client against the real API server on the memory store.
func TestAgainstAPIServer(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	api, err := apiserver.New(apiserver.Config{Store: st, Token: "tok", Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	noTok, _ := client.New(client.Config{Server: srv.URL})
	if _, err := noTok.List(ctx, "svc", ""); !client.IsUnauthorized(err) {
		t.Fatalf("no token: %v", err)
	}
	c, _ := client.New(client.Config{Server: srv.URL, Token: "tok"})

	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}}, Spec: v1.ServiceSpec{Image: "nginx"}}
	res, err := c.Put(ctx, svc, client.PutOptions{DryRun: true})
	if err != nil || !res.Created {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if _, err := c.Get(ctx, "svc", "web"); !client.IsNotFound(err) {
		t.Fatalf("dry run stored the object: %v", err)
	}
	res, err = c.Put(ctx, svc, client.PutOptions{})
	if err != nil || !res.Created {
		t.Fatalf("create: %+v %v", res, err)
	}
	first := res.Object.GetMetadata().ResourceVersion

	l, err := c.List(ctx, "services", "app=web")
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("list: %+v %v", l, err)
	}
	events, err := c.Watch(ctx, "services", client.WatchOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}

	upd := res.Object.DeepCopyObject().(*v1.Service)
	upd.Spec.Image = "nginx:2"
	res, err = c.Put(ctx, upd, client.PutOptions{})
	if err != nil || res.Created || res.Object.GetMetadata().Generation != 2 {
		t.Fatalf("update: %+v %v", res, err)
	}
	// The same resourceVersion again is stale now: compare-and-swap refuses it.
	upd.Spec.Image = "nginx:3"
	if _, err := c.Put(ctx, upd, client.PutOptions{}); !client.IsConflict(err) {
		t.Fatalf("stale CAS: %v (rv %s)", err, first)
	}
	bad := svc.DeepCopyObject().(*v1.Service)
	bad.Spec.Ports = []v1.ServicePort{{ContainerPort: 0}}
	_, err = c.Put(ctx, bad, client.PutOptions{})
	var ce *client.Error
	if !errorsAs(err, &ce) || ce.StatusCode != 422 || ce.Field != "spec.ports[0].containerPort" {
		t.Fatalf("invalid: %v", err)
	}

	select {
	case ev := <-events:
		if ev.Type != client.Modified || ev.Object.(*v1.Service).Spec.Image != "nginx:2" {
			t.Fatalf("event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	if _, err := c.Delete(ctx, "svc", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "svc", "web"); !client.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}
