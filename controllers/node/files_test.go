package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/store"
)

func TestResolveFiles(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	for _, o := range []v1.Object{
		&v1.Config{Metadata: v1.ObjectMeta{Name: "one"}, Spec: v1.ConfigSpec{Data: map[string]string{"a.conf": "A"}}},
		&v1.Config{Metadata: v1.ObjectMeta{Name: "two"}, Spec: v1.ConfigSpec{Data: map[string]string{"x": "X"}, BinaryData: map[string][]byte{"y": {0, 1}}}},
		&v1.Secret{Metadata: v1.ObjectMeta{Name: "db"}, Spec: v1.SecretSpec{Data: v1.SecretData{"password": "hunter2"}}},
	} {
		o.Default()
		if _, err := st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	files := []v1.FileMount{{Config: "one"}, {Config: "two", Key: "y", Path: "/y"}, {Secret: "db"}}
	svc := &v1.Service{Spec: v1.ServiceSpec{Image: "x", Files: files}}
	svc.Default()
	got, err := docker.ResolveFiles(ctx, st, "spec.files", svc.Spec.Files)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/one (0444, 1 bytes)", "/y (0444, 2 bytes)", "/run/secrets/db (0400, 7 bytes)"}
	for i, f := range got {
		if f.String() != want[i] {
			t.Errorf("file %d = %s, want %s", i, f, want[i])
		}
	}
	if string(got[0].Content) != "A" || string(got[1].Content) != "\x00\x01" || string(got[2].Content) != "hunter2" {
		t.Fatalf("contents %q %q %q", got[0].Content, got[1].Content, got[2].Content)
	}
	for _, tc := range []struct {
		file v1.FileMount
		msg  string
	}{
		{v1.FileMount{Config: "nope", Path: "/n"}, "spec.files[0]: configs/nope does not exist"},
		{v1.FileMount{Secret: "nope", Path: "/n"}, "spec.files[0]: secrets/nope does not exist"},
		{v1.FileMount{Config: "two", Path: "/n"}, "spec.files[0]: configs/two has 2 keys (x, y): set key to pick one"},
		{v1.FileMount{Secret: "db", Key: "user", Path: "/n"}, `spec.files[0]: secrets/db has no key "user"`},
	} {
		_, err := docker.ResolveFiles(ctx, st, "spec.files", []v1.FileMount{tc.file})
		if !errors.Is(err, docker.ErrFileSourceNotFound) || !strings.Contains(err.Error(), tc.msg) || reasonOf(err) != v1.ReasonFileSourceNotFound {
			t.Errorf("%+v: err %v, want %q (reason FileSourceNotFound)", tc.file, err, tc.msg)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Fatal("an error quotes a Secret value")
		}
	}
}

// copyingDocker is the fake engine with the archive call: it records the files each container
// got, or fails.
type copyingDocker struct {
	*fakeDocker
	fail  error
	files map[string][]docker.File
}

func (c *copyingDocker) CopyFiles(_ context.Context, id string, files []docker.File) error {
	if c.fail != nil {
		return c.fail
	}
	c.files[id] = files
	return nil
}

// A replica with files gets them before it starts; one whose copy fails is removed, never
// started; a missing Config holds it back with reason FileSourceNotFound.
func TestFilesCopiedBeforeStart(t *testing.T) {
	var eng *copyingDocker
	f := newFixtureWith(t, func(c *Config) {
		eng = &copyingDocker{fakeDocker: c.Docker.(*fakeDocker), files: map[string][]docker.File{}}
		c.Docker = eng
	})
	cfg := &v1.Config{Metadata: v1.ObjectMeta{Name: "app"}, Spec: v1.ConfigSpec{Data: map[string]string{"app.conf": "x=1"}}}
	cfg.Default()
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) { sp.Files = []v1.FileMount{{Config: "app", Path: "/etc/app.conf"}} })
	_ = f.reconcile() // a failed action is retried with backoff, not returned
	if n := len(f.dock.ctrs); n != 0 {
		t.Fatalf("%d containers created without their Config", n)
	}
	if len(f.published) != 1 || f.published[0].Reason != v1.ReasonFileSourceNotFound || !strings.Contains(f.published[0].Message, "configs/app does not exist") {
		t.Fatalf("published %+v", f.published)
	}
	if _, err := f.st.Create(f.ctx, cfg); err != nil {
		t.Fatal(err)
	}
	eng.fail = errors.New("engine refused the archive")
	f.clk.Step(time.Hour) // past the backoff
	_ = f.reconcile()
	if n := len(f.dock.ctrs); n != 0 {
		t.Fatalf("a container whose files could not be copied was kept (%d)", n)
	}
	if len(f.dock.created) != 1 || len(f.published) != 1 || !strings.Contains(f.published[0].Message, "engine refused the archive") {
		t.Fatalf("the copy was not tried once: %d creates, published %+v", len(f.dock.created), f.published)
	}
	eng.fail = nil
	f.clk.Step(time.Hour)
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("running %d", f.running())
	}
	for id := range f.dock.ctrs {
		if got := eng.files[id]; len(got) != 1 || got[0].Path != "/etc/app.conf" || got[0].Mode != 0o444 || string(got[0].Content) != "x=1" {
			t.Fatalf("files of %s: %v", id, got)
		}
	}
}
