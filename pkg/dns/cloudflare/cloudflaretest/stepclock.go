package cloudflaretest

import (
	"context"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
)

// StepClock is a cloudflare.Clock for tests and simulations: time stands still until someone
// sleeps, and Sleep moves it forward by the duration at once.
type StepClock struct {
	mu sync.Mutex
	// guarded by mu:
	now time.Time
}

var _ cloudflare.Clock = (*StepClock)(nil)

// NewStepClock returns a StepClock reading start.
func NewStepClock(start time.Time) *StepClock { return &StepClock{now: start} }

// Now implements cloudflare.Clock.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Since is Now().Sub(t) (so a StepClock is also a k8s.io/utils/clock PassiveClock).
func (c *StepClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Sleep implements cloudflare.Clock: it advances the clock by d and returns.
func (c *StepClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Advance moves the clock forward by d.
func (c *StepClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
