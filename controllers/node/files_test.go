package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
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
	got, err := ResolveFiles(ctx, st, "spec.files", svc.Spec.Files)
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
		_, err := ResolveFiles(ctx, st, "spec.files", []v1.FileMount{tc.file})
		if !errors.Is(err, errFileSource) || !strings.Contains(err.Error(), tc.msg) || reasonOf(err) != v1.ReasonFileSourceNotFound {
			t.Errorf("%+v: err %v, want %q (reason FileSourceNotFound)", tc.file, err, tc.msg)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Fatal("an error quotes a Secret value")
		}
	}
}
