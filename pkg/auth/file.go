package auth

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/config"
)

// File is a token file that is re-read when it changes (polled) or when Reload is called (the
// agent calls it on SIGHUP). A file that becomes unreadable, loose in its mode or malformed
// keeps the tokens read before: a typo during a rotation locks nobody out, and says so in the
// log.
type File struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	set     *Set
	stamp   fileStamp
	lastErr error
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// OpenFile reads path (mode 0600 or stricter) and returns it with its tokens. An error here
// is fatal to the agent: it names the file and the line.
func OpenFile(path string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &File{path: path, log: log}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Set returns the current tokens.
func (f *File) Set() *Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set
}

// Reload re-reads the file. On an error the previous tokens stay in force.
func (f *File) Reload() error {
	err := f.load()
	if err != nil {
		f.log.Error("token file not reloaded; the previous tokens stay in force", "file", f.path, "err", err)
	}
	return err
}

func (f *File) load() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	raw, err := config.ReadSecretFile(f.path)
	if err != nil {
		return err
	}
	toks, err := ParseTokens([]byte(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := f.set != nil
	f.set = NewSet(toks)
	f.stamp = stampOf(st)
	f.lastErr = nil
	names := make([]string, 0, len(toks))
	for _, t := range toks {
		names = append(names, t.Name+"("+string(t.Scope)+")")
		if len(t.Secret) < MinSecretLength {
			f.log.Warn("API token is short: generate one with `openssl rand -hex 32`", "file", f.path, "token", t.Name, "length", len(t.Secret))
		}
	}
	if changed {
		f.log.Info("API tokens reloaded", "file", f.path, "tokens", names)
	}
	return nil
}

// changed reports whether the file's stamp differs from the one loaded.
func (f *File) changed() bool {
	st, err := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		return f.lastErr == nil // report a vanished file once
	}
	return stampOf(st) != f.stamp
}

// Run polls the file every interval until ctx ends, reloading it when it changed.
func (f *File) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f.changed() {
			continue
		}
		err := f.Reload()
		f.mu.Lock()
		f.lastErr = err
		if err != nil {
			// Do not log the same failure every tick: wait for the next change.
			if st, serr := os.Stat(f.path); serr == nil {
				f.stamp = stampOf(st)
			}
		}
		f.mu.Unlock()
	}
}
