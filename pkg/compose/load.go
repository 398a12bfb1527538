// Loading: reads Compose files with compose-go as `docker compose` does, capturing the loader's warnings.

package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

// Options says how to load the Compose files.
type Options struct {
	// Env is the environment interpolation reads (KEY=VALUE), before the .env file; default none
	// (ctl passes os.Environ()).
	Env []string
	// Profiles to enable (Compose's --profile); default none: only services without a profile.
	Profiles []string
	// WorkingDir is the project directory relative paths (.env, env_file, extends, include) are
	// read from; default the first file's directory.
	WorkingDir string
	// ProjectName; default the working directory's name, as Compose does.
	ProjectName string
}

// loaderLog serialises loads: compose-go warns through logrus's global logger, which Load
// points at itself for the duration of a load.
var loaderLog sync.Mutex

type warnHook struct{ msgs []string }

func (h *warnHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.WarnLevel, logrus.ErrorLevel}
}

func (h *warnHook) Fire(e *logrus.Entry) error {
	h.msgs = append(h.msgs, e.Message)
	return nil
}

// Load reads the Compose files with compose-go as `docker compose` does. The loader's warnings
// (a variable that is not set) are returned, not logged.
func Load(ctx context.Context, files []string, o Options) (p *types.Project, warnings []string, err error) {
	// compose-go v2.16.2 panics on some malformed files (ulimits with a null hard limit, found by
	// FuzzConvert): make that an error naming the file, not a crash.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("compose: %s: the loader failed on this file (compose-go: %v)", strings.Join(files, ", "), r)
		}
	}()
	if len(files) == 0 {
		return nil, nil, errors.New("compose: no files")
	}
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, nil, fmt.Errorf("compose: %w", err)
		}
		abs[i] = a
		if err := checkAnchors(a); err != nil {
			return nil, nil, err
		}
	}
	wd := o.WorkingDir
	if wd == "" {
		wd = filepath.Dir(abs[0])
	}
	wd, err = filepath.Abs(wd)
	if err != nil {
		return nil, nil, fmt.Errorf("compose: %w", err)
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(wd),
		cli.WithEnv(o.Env),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(o.Profiles),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		// Paths resolve against the project directory (env_file, extends, include need it);
		// a bind source inside it is made relative again when mapped (a cluster has no project
		// directory, so it becomes a named volume).
		cli.WithResolvedPaths(true),
	}
	if o.ProjectName != "" {
		opts = append(opts, cli.WithName(o.ProjectName))
	}
	loaderLog.Lock()
	defer loaderLog.Unlock()
	std := logrus.StandardLogger()
	hook := &warnHook{}
	oldOut, oldHooks := std.Out, std.ReplaceHooks(logrus.LevelHooks{})
	std.SetOutput(io.Discard)
	std.AddHook(hook)
	defer func() {
		std.SetOutput(oldOut)
		std.ReplaceHooks(oldHooks)
	}()
	po, err := cli.NewProjectOptions(abs, opts...)
	if err != nil {
		return nil, hook.msgs, fmt.Errorf("compose: %w", err)
	}
	p, err = po.LoadProject(ctx)
	if err != nil {
		return nil, hook.msgs, fmt.Errorf("compose: %w", err)
	}
	return p, hook.msgs, nil
}
