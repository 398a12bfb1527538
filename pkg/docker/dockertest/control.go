package dockertest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// Kill ends container id's process with code (an application crashing, the OOM killer with
// 137), as seen from outside: a "die" event, state exited. Nothing restarts it.
func (e *Engine) Kill(id string, code int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.ctrs[id]
	if !ok {
		return fmt.Errorf("kill container %s: %w", short(id), docker.ErrNotFound)
	}
	if !c.c.Running {
		return fmt.Errorf("kill container %s: %w: not running", short(id), errNotRunning)
	}
	e.exitLocked(c, code)
	return nil
}

var errNotRunning = errors.New("dockertest: container is not running")

// SetDown makes the engine unavailable (every call fails with docker.ErrUnavailable, event
// streams end with io.EOF) or available again. Containers keep their state.
func (e *Engine) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
	if down {
		for s := range e.subs {
			delete(e.subs, s)
			s.end(fmt.Errorf("docker events: %w", io.EOF))
		}
	}
}

// Containers returns every container, by ID, as List reports them (also while down).
func (e *Engine) Containers() []docker.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listLocked(nil)
}

// AddImage makes ref present, as a docker load or an earlier pull does.
func (e *Engine) AddImage(ref string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images[ref] = true
}

// Pulls returns the references pulled so far, in order.
func (e *Engine) Pulls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pulls)
}

// Networks returns the networks that exist, sorted.
func (e *Engine) Networks() []string { return e.names(func() map[string]bool { return e.networks }) }

// Volumes returns the volumes that exist, sorted.
func (e *Engine) Volumes() []string { return e.names(func() map[string]bool { return e.volumes }) }

func (e *Engine) names(m func() map[string]bool) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(m()))
}

// Files returns what CopyFiles put in container id.
func (e *Engine) Files(id string) []docker.File {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.ctrs[id]; ok {
		return slices.Clone(c.files)
	}
	return nil
}
