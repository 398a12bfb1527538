package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// baseTestImage is a shared test image (hack/build-test-images.sh); the tests only tag it
// under a name of their own and remove that tag.
const baseTestImage = "constellation-test/tool:1"

// tempTag tags baseTestImage as a unique reference and removes the tag at the end.
func tempTag(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ref := "constellation-test/peerimg:" + hex.EncodeToString(b[:])
	if out, err := exec.Command("docker", "tag", baseTestImage, ref).CombinedOutput(); err != nil {
		t.Fatalf("docker tag %s %s (hack/build-test-images.sh builds it): %v\n%s", baseTestImage, ref, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", ref).Run() })
	return ref
}

func untag(t *testing.T, ref string) {
	t.Helper()
	if out, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
		t.Fatalf("docker rmi %s: %v\n%s", ref, err, out)
	}
}

func realClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestImageSaveLoadRoundTrip saves an image, removes its tag, loads the archive back: the tag
// is there again with the same ID; the list shows it with its size.
func TestImageSaveLoadRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := realClient(t)
	ref := tempTag(t)
	id, err := c.ImageID(ctx, ref)
	if err != nil || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("ImageID(%s) = %q, %v", ref, id, err)
	}
	ims, err := c.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ims, func(im Image) bool { return slices.Contains(im.RepoTags, ref) })
	if i < 0 || ims[i].ID != id || ims[i].Size <= 0 {
		t.Fatalf("Images: %s not listed with ID %s and a size (index %d)", ref, id, i)
	}
	var buf bytes.Buffer
	n, err := c.SaveImage(ctx, ref, &buf)
	if err != nil || n != int64(buf.Len()) || n < 1000 {
		t.Fatalf("SaveImage = %d bytes (buffer %d), %v", n, buf.Len(), err)
	}
	untag(t, ref)
	if ok, err := c.HasImage(ctx, ref); ok || err != nil {
		t.Fatalf("after rmi: HasImage = %v, %v", ok, err)
	}
	res, err := c.LoadImage(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Loaded, ref) {
		t.Fatalf("Loaded = %v, want %s among them", res.Loaded, ref)
	}
	if got, err := c.ImageID(ctx, ref); err != nil || got != id {
		t.Fatalf("after load: ImageID = %q, %v; want %s", got, err, id)
	}
}

func TestImageSaveMissing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := realClient(t)
	var buf bytes.Buffer
	_, err := c.SaveImage(ctx, "constellation-test/never-built:0", &buf)
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "constellation-test/never-built:0") {
		t.Fatalf("SaveImage of a missing image: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes written for a missing image", buf.Len())
	}
}

// failingReader yields the first n bytes of b, then fails, like a peer gone mid-transfer.
type failingReader struct {
	b   []byte
	n   int
	off int
}

var errPeerGone = errors.New("peer gone")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.off >= f.n {
		return 0, errPeerGone
	}
	k := copy(p, f.b[f.off:f.n])
	f.off += k
	return k, nil
}

// TestImageLoadRefused: an archive that is not one, and one cut half-way, fail the load and
// leave no image behind.
func TestImageLoadRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := realClient(t)
	if _, err := c.LoadImage(ctx, strings.NewReader("this is not a tar")); !errors.Is(err, ErrBadImageArchive) {
		t.Fatalf("load of garbage: %v", err)
	}
	ref := tempTag(t)
	var buf bytes.Buffer
	if _, err := c.SaveImage(ctx, ref, &buf); err != nil {
		t.Fatal(err)
	}
	untag(t, ref)
	_, err := c.LoadImage(ctx, &failingReader{b: buf.Bytes(), n: buf.Len() / 2})
	if !errors.Is(err, errPeerGone) {
		t.Fatalf("load of a cut stream: %v, want the reader's error", err)
	}
	if ok, err := c.HasImage(ctx, ref); ok || err != nil {
		t.Fatalf("after a cut load: HasImage = %v, %v", ok, err)
	}
	// An empty read is no image either.
	if _, err := c.LoadImage(ctx, io.LimitReader(strings.NewReader(""), 0)); err == nil {
		t.Fatal("load of an empty body succeeded")
	}
}
