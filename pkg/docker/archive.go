// Volume archives: names rebased to the volume's root on export, entries checked on import.
// Pure (readers and writers only).

package docker

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// rebaseTar copies the tar archive r to w with every name made relative to the volume's root:
// Docker names entries after the source's base name ("." or the mount point's), which this
// strips, so that an archive is the same whichever way it was taken. The root entry is dropped.
func rebaseTar(r io.Reader, w io.Writer, prefixes ...string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read volume archive: %w", err)
		}
		name := relName(h.Name, prefixes...)
		if name == "" {
			continue
		}
		h.Name = name
		if h.Typeflag == tar.TypeLink {
			h.Linkname = relName(h.Linkname, prefixes...)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// relName is name cleaned and relative, without the first of prefixes it starts with; "" for
// the root itself.
func relName(name string, prefixes ...string) string {
	dir := strings.HasSuffix(name, "/")
	n := path.Clean("/" + name)[1:]
	for _, p := range prefixes {
		p = path.Clean("/" + p)[1:]
		if p == "" {
			continue
		}
		if n == p {
			return ""
		}
		if strings.HasPrefix(n, p+"/") {
			n = strings.TrimPrefix(n, p+"/")
			break
		}
	}
	if n == "" {
		return ""
	}
	if dir {
		n += "/"
	}
	return n
}

// ErrBadArchive is a restore archive the agent refuses: not a tar, or an entry that would land
// outside the volume.
var ErrBadArchive = errors.New("docker: bad volume archive")

// checkTar copies the tar archive r to w, refusing entries that would land outside the volume
// (absolute names are made relative; ".." escapes, device nodes and FIFOs are refused).
func checkTar(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return fmt.Errorf("%w: empty archive", ErrBadArchive)
			}
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadArchive, err)
		}
		if err := CheckArchiveEntry(h); err != nil {
			return err
		}
		h.Name = strings.TrimLeft(h.Name, "/")
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// CheckArchiveEntry refuses an entry of a restore archive that would write outside the volume
// or create a device.
func CheckArchiveEntry(h *tar.Header) error {
	escapes := func(p string) bool {
		c := path.Clean(strings.TrimLeft(p, "/"))
		return c == ".." || strings.HasPrefix(c, "../")
	}
	switch {
	case escapes(h.Name):
		return fmt.Errorf("%w: entry %q leaves the volume", ErrBadArchive, h.Name)
	case h.Typeflag == tar.TypeLink && escapes(h.Linkname):
		return fmt.Errorf("%w: hard link %q -> %q leaves the volume", ErrBadArchive, h.Name, h.Linkname)
	case h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock || h.Typeflag == tar.TypeFifo:
		return fmt.Errorf("%w: entry %q is a device or FIFO", ErrBadArchive, h.Name)
	}
	return nil
}
