package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// File is one file put into a container before it starts (spec.files).
type File struct {
	// Path is the clean absolute path in the container.
	Path string
	// Mode is the permission bits.
	Mode uint32
	// Content is the file's bytes. It may be a Secret's value: never log it.
	Content []byte
}

// String names the file without its content, so that %v cannot leak a Secret.
func (f File) String() string {
	return fmt.Sprintf("%s (%04o, %d bytes)", f.Path, f.Mode, len(f.Content))
}

// FilesTar returns the tar archive Docker's archive endpoint extracts at "/": one regular file
// per entry, owned by uid and gid 0, with the entry's mode. Missing parent directories are
// created by the engine (mode 0755, owned by root).
func FilesTar(files []File, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		if name == "" || strings.HasSuffix(name, "/") {
			return nil, fmt.Errorf("file %q: not a file path", f.Path)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(f.Mode & 0o777), Size: int64(len(f.Content)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar header of %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, fmt.Errorf("tar content of %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	return buf.Bytes(), nil
}

// CopyFiles puts files into the container id (created, not yet started) through the engine's
// archive endpoint (PUT /containers/{id}/archive): the bytes go from the agent's memory to the
// container's writable layer, never through a file on the node. A read-only root file system
// refuses it (api/v1 refuses spec.files with readOnlyRootFilesystem).
func (c *Client) CopyFiles(ctx context.Context, id string, files []File) error {
	if len(files) == 0 {
		return nil
	}
	archive, err := FilesTar(files, c.now())
	if err != nil {
		return fmt.Errorf("copy files into container %s: %w", short(id), err)
	}
	return c.call(ctx, "copy files into container", short(id), c.t.Call, func(ctx context.Context) error {
		_, err := c.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(archive)})
		return wrap(err, "copy %d files into container %s", len(files), short(id))
	})
}
