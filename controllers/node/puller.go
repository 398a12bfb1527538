package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// errPullTimeout marks a pull that ran out of Config.PullTimeout. It is a replica failure
// (CreateFailed, retried with backoff), not an engine outage: the engine answered, the
// registry did not deliver.
var errPullTimeout = errors.New("image pull timed out")

// puller pulls images off the reconcile workers. A pull can take minutes (a large image, a slow
// or black-holed registry); inside Reconcile it would hold a worker and, with two workers, stop
// the whole node. Here one pull runs per image at a time, any number of services wait for it,
// and every waiter is enqueued again when it ends.
type puller struct {
	pull    func(ctx context.Context, ref string, progress func(docker.PullProgress)) error
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	// wake enqueues a waiting service.
	wake func(service string)

	mu sync.Mutex
	// base is the context pulls run under (the reconciler's Run context); guarded by mu.
	base context.Context
	// active pulls by image; guarded by mu.
	active map[string]*pullJob
	// failed holds, by image then waiting service, the error of the last pull, handed to each
	// waiter once so that it records a failure and backs off; guarded by mu.
	failed map[string]map[string]error
}

type pullJob struct {
	started  time.Time
	progress docker.PullProgress // guarded by puller.mu
	waiters  map[string]bool     // guarded by puller.mu
}

// pullStatus is what request reports: a pull running (since Started, with Progress), or the
// error of the last one.
type pullStatus struct {
	Pulling  bool
	Started  time.Time
	Progress docker.PullProgress
	Err      error
}

func newPuller(pull func(context.Context, string, func(docker.PullProgress)) error, timeout time.Duration, now func() time.Time, log *slog.Logger, wake func(string)) *puller {
	return &puller{pull: pull, timeout: timeout, now: now, log: log, wake: wake,
		base: context.Background(), active: map[string]*pullJob{}, failed: map[string]map[string]error{}}
}

// setBase makes later pulls run under ctx, so that they end with the reconciler.
func (p *puller) setBase(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base = ctx
}

// request never blocks: it reports the pull of ref that service waits for, starting one unless
// one runs, or hands service the error of the last pull it waited for.
func (p *puller) request(ref, service string) pullStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if errs := p.failed[ref]; errs != nil {
		if err, ok := errs[service]; ok {
			delete(errs, service)
			if len(errs) == 0 {
				delete(p.failed, ref)
			}
			return pullStatus{Err: err}
		}
	}
	j := p.active[ref]
	if j == nil {
		j = &pullJob{started: p.now(), waiters: map[string]bool{}}
		p.active[ref] = j
		p.log.Info("pulling image", "image", ref, "for", service)
		go p.run(p.base, ref, j)
	}
	j.waiters[service] = true
	return pullStatus{Pulling: true, Started: j.started, Progress: j.progress}
}

func (p *puller) run(base context.Context, ref string, j *pullJob) {
	cause := fmt.Errorf("pull image %s: %w after %s", ref, errPullTimeout, p.timeout)
	ctx, cancel := context.WithTimeoutCause(base, p.timeout, cause)
	defer cancel()
	err := p.pull(ctx, ref, func(pr docker.PullProgress) {
		p.mu.Lock()
		j.progress = pr
		p.mu.Unlock()
	})
	if err != nil && base.Err() == nil && (errors.Is(context.Cause(ctx), cause) || errors.Is(err, docker.ErrTimeout)) {
		// Out of time, ours or the client's: a failure of this replica's image, not an engine
		// outage (%v, not %w: it must not match docker.ErrUnavailable).
		err = fmt.Errorf("pull image %s: %w after %s (%v)", ref, errPullTimeout, p.now().Sub(j.started).Round(time.Second), err)
	}
	p.mu.Lock()
	delete(p.active, ref)
	waiters := make([]string, 0, len(j.waiters))
	for w := range j.waiters {
		waiters = append(waiters, w)
	}
	sort.Strings(waiters)
	if err == nil {
		delete(p.failed, ref) // the image is here: older failures are moot
	}
	if err != nil && base.Err() == nil {
		m := p.failed[ref]
		if m == nil {
			m = map[string]error{}
			p.failed[ref] = m
		}
		for _, w := range waiters {
			m[w] = err
		}
	}
	p.mu.Unlock()
	took := p.now().Sub(j.started).Round(time.Millisecond)
	switch {
	case base.Err() != nil:
		return
	case err != nil:
		p.log.Warn("image pull failed", "image", ref, "duration", took, "err", err)
	default:
		p.log.Info("image pulled", "image", ref, "duration", took)
	}
	for _, w := range waiters {
		p.wake(w)
	}
}
