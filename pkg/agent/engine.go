package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/constellation-sh/constellation/controllers/job"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// Options are what code, not flags or TOML, hands an agent. The configuration stays data that
// the loaders fill; an engine is a live object, so it comes here.
type Options struct {
	// Engine is this node's container engine, in place of the Docker client --docker.host
	// names (tests: pkg/docker/dockertest). The caller owns it: the agent does not close it.
	// A *docker.Client gets every feature; any other engine runs the node reconciler, the
	// warm-up check and (when it has CopyFiles) the Job runner, and the features that need
	// the whole client are off with a log line (openEngine, docs/testing.md). Nil: the agent
	// dials Docker itself, unless --docker.disabled. Setting it with --docker.disabled is an
	// error.
	Engine docker.Engine
}

// engineInfo is what the diagnostics' Docker check needs of the engine.
type engineInfo interface {
	Ping(ctx context.Context) error
	APIVersion() string
}

// openEngine sets a.engine (nil when Docker is disabled) and a.docker (the engine when it is
// the whole *docker.Client, else nil): from opts.Engine, or a client of --docker.host that the
// agent closes when it stops.
func (a *Agent) openEngine(opts Options) error {
	switch {
	case a.cfg.Docker.Disabled && opts.Engine != nil:
		return errors.New("--docker.disabled: the agent was also handed an engine (Options.Engine)")
	case a.cfg.Docker.Disabled:
		return nil
	case opts.Engine == nil:
		dc, err := docker.New(docker.Options{Host: a.cfg.Docker.Host, Logger: a.log})
		if err != nil {
			return fmt.Errorf("--docker.host: %w", err)
		}
		a.engine, a.docker, a.closeEngine = dc, dc, dc.Close
		return nil
	}
	a.engine = opts.Engine
	if dc, ok := opts.Engine.(*docker.Client); ok {
		a.docker = dc
		return nil
	}
	_, jobs := opts.Engine.(job.Docker)
	// Images from peers, their advertisement and their collection need the whole *docker.Client (peerimages.go).
	_, info := opts.Engine.(engineInfo)
	a.log.Warn("the engine is not a Docker client: the node API (logs, exec, volumes, stats) answers 503",
		"engine", fmt.Sprintf("%T", opts.Engine), "jobRunner", on(jobs), "peerImages", "off", "dockerCheck", on(info))
	return nil
}

func on(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
