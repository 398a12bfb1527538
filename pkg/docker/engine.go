package docker

import (
	"context"
	"time"
)

// Engine is the part of the engine a component that runs containers uses (the node
// reconciler, the Job runner); *Client implements it. Components declare it, or embed it with
// what more they need, so tests can hand them a fake: pkg/docker/dockertest is an in-memory
// one, a whole agent runs on (agent.Options.Engine).
type Engine interface {
	List(ctx context.Context, labels map[string]string) ([]Container, error)
	Create(ctx context.Context, cfg CreateConfig) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	// HasImage is a short local check; PullImage may take minutes (callers run it off their
	// workers).
	HasImage(ctx context.Context, ref string) (bool, error)
	PullImage(ctx context.Context, ref string, progress func(PullProgress)) error
	EnsureNetwork(ctx context.Context, name string) error
	EnsureVolume(ctx context.Context, name string) error
	LogTail(ctx context.Context, id string, since time.Time, lines int) (string, error)
	Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error)
}

var _ Engine = (*Client)(nil)
