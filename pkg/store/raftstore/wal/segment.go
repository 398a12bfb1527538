package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// newSegment opens segment seq whose first entry will be index — the one prepared in the
// background if it is ready, else one created and preallocated now — makes its directory
// entry durable, and starts preparing the one after it.
func (w *WAL) newSegment(seq, index uint64) error {
	path := filepath.Join(w.dir, segName(seq, index))
	from := filepath.Join(w.dir, nextReady)
	if !w.takePrepared() {
		if len(w.segs) > 0 {
			w.log.Info("wal: next segment not prepared yet; creating it now", "segment", filepath.Base(path))
		}
		from = path + ".tmp"
		if err := preallocate(from, w.opts.SegmentSize, w.opts.fallocate, nil); err != nil {
			return err
		}
		w.created++
	} else {
		w.prepared++
	}
	if err := os.Rename(from, path); err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	w.f, w.off = f, 0
	w.segs = append(w.segs, segment{seq: seq, index: index, path: path})
	w.startPrepare()
	return nil
}

// preallocate creates the file path of size bytes, zero-filled (or fallocate'd), and syncs
// it. stop, when it becomes true, makes it give up and remove the file.
func preallocate(path string, size int64, fallocate bool, stop *atomic.Bool) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("wal: create segment: %w", cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if fallocate {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			// Not every file system preallocates: a sparse file of the same size.
			if err := f.Truncate(size); err != nil {
				return fmt.Errorf("wal: size segment: %w", err)
			}
		}
	} else {
		zeros := make([]byte, min(size, 1<<20))
		for off := int64(0); off < size; {
			if stop != nil && stop.Load() {
				return errStopped
			}
			n := min(int64(len(zeros)), size-off)
			if _, err := f.WriteAt(zeros[:n], off); err != nil {
				return fmt.Errorf("wal: zero-fill segment: %w", err)
			}
			off += n
		}
	}
	if err := unix.Fsync(int(f.Fd())); err != nil {
		return fmt.Errorf("wal: sync segment: %w", err)
	}
	return nil
}

var errStopped = errors.New("wal: closed while preparing the next segment")

// findPrepared takes a next segment left ready by an earlier run (it was synced before it
// got its name) if it has the segment size, and removes any other leftover of a preparation
// or of a segment creation that a crash interrupted.
func (w *WAL) findPrepared() error {
	des, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", w.dir, err)
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(w.dir, name)
		if name == nextReady {
			if info, err := de.Info(); err == nil && info.Mode().IsRegular() && info.Size() == w.opts.SegmentSize {
				p := &preparation{done: make(chan struct{})}
				close(p.done)
				w.prep = p
				continue
			}
		} else if name != nextTmp && !strings.HasSuffix(name, ".wal.tmp") {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove leftover %s: %w", path, err)
		}
	}
	return nil
}

// startPrepare starts preparing the next segment in the background, unless a preparation is
// running or ready.
func (w *WAL) startPrepare() {
	if w.prep != nil {
		return
	}
	p := &preparation{done: make(chan struct{})}
	w.prep = p
	dir, size, fallocate, hook := w.dir, w.opts.SegmentSize, w.opts.fallocate, w.opts.beforePrepare
	go func() {
		defer close(p.done)
		if hook != nil {
			hook()
		}
		tmp := filepath.Join(dir, nextTmp)
		if err := preallocate(tmp, size, fallocate, &p.stop); err != nil {
			p.err = err
			return
		}
		if err := os.Rename(tmp, filepath.Join(dir, nextReady)); err != nil {
			_ = os.Remove(tmp)
			p.err = fmt.Errorf("wal: prepare next segment: %w", err)
		}
	}()
}

// takePrepared reports whether the next segment is ready (and is now the caller's to rename).
// A preparation still running is left to run: it is the segment after.
func (w *WAL) takePrepared() bool {
	p := w.prep
	if p == nil {
		return false
	}
	select {
	case <-p.done:
	default:
		return false
	}
	w.prep = nil
	if p.err != nil {
		w.log.Warn("wal: preparing the next segment failed; creating it now", "dir", w.dir, "err", p.err)
		return false
	}
	return true
}

// stopPrepare stops a running preparation and waits for it. A ready segment stays for the
// next Open.
func (w *WAL) stopPrepare() {
	if p := w.prep; p != nil {
		p.stop.Store(true)
		<-p.done
		w.prep = nil
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}
