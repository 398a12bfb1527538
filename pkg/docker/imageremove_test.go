package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RemoveImage removes an image; a second removal is no error; an image a (stopped)
// container uses is ErrImageInUse and stays.
func TestRemoveImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := realClient(t)
	ref := tempTag(t)
	if err := c.RemoveImage(ctx, ref); err != nil {
		t.Fatalf("RemoveImage(%s) = %v", ref, err)
	}
	if ok, err := c.HasImage(ctx, ref); ok || err != nil {
		t.Fatalf("after RemoveImage: HasImage = %v, %v", ok, err)
	}
	if err := c.RemoveImage(ctx, ref); err != nil {
		t.Fatalf("removing a gone image = %v, want nil", err)
	}

	// A unique image (a new ID), used by a created container.
	var b [4]byte
	_, _ = rand.Read(b[:])
	own := "constellation-test/rmimg:" + hex.EncodeToString(b[:])
	build := exec.Command("docker", "build", "-q", "-t", own, "-")
	build.Stdin = strings.NewReader("FROM " + baseTestImage + "\nLABEL constellation.test.rm=" + own + "\n")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", own, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", own).Run() })
	out, err := exec.Command("docker", "create", own).CombinedOutput()
	if err != nil {
		t.Fatalf("docker create %s: %v\n%s", own, err, out)
	}
	ctr := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", ctr).Run() })
	id, err := c.ImageID(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveImage(ctx, id); !errors.Is(err, ErrImageInUse) {
		t.Fatalf("RemoveImage of an image a container uses = %v, want ErrImageInUse", err)
	}
	if ok, err := c.HasImage(ctx, own); !ok || err != nil {
		t.Fatalf("the used image is gone: HasImage = %v, %v", ok, err)
	}
}
