package dockertest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"

	"github.com/constellation-sh/constellation/pkg/docker"
)

type sub struct {
	labels map[string]string
	ch     chan docker.Event
	errc   chan error
	done   chan struct{}
	once   sync.Once
}

// Events streams the events of containers carrying all of labels until ctx ends (ctx.Err())
// or the engine goes down (io.EOF, as when the daemon closes the stream). A slow reader
// holds the engine up, as with dockerd; read until the stream ends.
func (e *Engine) Events(ctx context.Context, labels map[string]string) (<-chan docker.Event, <-chan error) {
	s := &sub{labels: maps.Clone(labels), ch: make(chan docker.Event, 64), errc: make(chan error, 1), done: make(chan struct{})}
	out := make(chan docker.Event)
	e.mu.Lock()
	if err := e.errLocked("docker events"); err != nil {
		e.mu.Unlock()
		close(out)
		s.errc <- err
		return out, s.errc
	}
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-s.ch:
				select {
				case out <- ev:
				case <-ctx.Done():
					e.unsubscribe(s, ctx.Err())
					return
				}
			case <-s.done:
				return
			case <-ctx.Done():
				e.unsubscribe(s, ctx.Err())
				return
			}
		}
	}()
	return out, s.errc
}

func (e *Engine) unsubscribe(s *sub, err error) {
	e.mu.Lock()
	delete(e.subs, s)
	e.mu.Unlock()
	s.end(err)
}

func (s *sub) end(err error) {
	s.once.Do(func() {
		s.errc <- err
		close(s.done)
	})
}

// emitLocked sends an event about c to the subscribers it matches; e.mu is held. A
// subscriber whose buffer is full loses its stream (io.EOF), as a reader too slow for
// dockerd does, rather than stalling the engine.
func (e *Engine) emitLocked(c *ctr, action string) {
	attrs := maps.Clone(c.c.Labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"], attrs["image"] = c.c.Name, c.c.Image
	if action == "die" {
		attrs["exitCode"] = strconv.Itoa(c.c.ExitCode)
	}
	ev := docker.Event{ContainerID: c.c.ID, Action: action, Labels: attrs, Time: e.opts.Now()}
	for s := range e.subs {
		if !matches(c.c.Labels, s.labels) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			delete(e.subs, s)
			s.end(fmt.Errorf("docker events: reader too slow: %w", io.EOF))
		}
	}
}
