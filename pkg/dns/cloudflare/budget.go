package cloudflare

import (
	"context"
	"sync"
	"time"
)

// Clock is the time the Client reads and sleeps on. Tests inject one that advances on Sleep.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Budget is a token bucket: it holds up to burst tokens and refills at rate tokens per second.
// Any interval of length T grants at most burst + rate*T tokens. Waiters reserve their token
// (the count may go negative) and sleep until it is theirs, so they are served in order.
type Budget struct {
	clock Clock
	rate  float64 // tokens per second
	burst float64

	mu sync.Mutex
	// guarded by mu:
	tokens float64
	last   time.Time
}

// NewBudget returns a full bucket refilling requests tokens every per, holding at most burst.
func NewBudget(requests int, per time.Duration, burst int, clock Clock) *Budget {
	if clock == nil {
		clock = RealClock{}
	}
	return &Budget{clock: clock, rate: float64(requests) / per.Seconds(), burst: float64(burst),
		tokens: float64(burst), last: clock.Now()}
}

func (b *Budget) refillLocked(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// Remaining returns the tokens available now (negative while callers wait).
func (b *Budget) Remaining() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(b.clock.Now())
	return b.tokens
}

// Take takes one token, waiting for it. If the wait would outlast ctx's deadline it returns at
// once a *RateLimitError saying how long the wait would have been, and takes nothing.
func (b *Budget) Take(ctx context.Context) error {
	b.mu.Lock()
	now := b.clock.Now()
	b.refillLocked(now)
	b.tokens--
	wait := time.Duration(0)
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	if wait > 0 && exceedsDeadline(ctx, wait) {
		b.tokens++
		b.mu.Unlock()
		return &RateLimitError{RetryAfter: wait, Budget: true}
	}
	b.mu.Unlock()
	if wait == 0 {
		return nil
	}
	if err := b.clock.Sleep(ctx, wait); err != nil {
		b.mu.Lock()
		b.tokens++ // give the reservation back
		b.mu.Unlock()
		return err
	}
	return nil
}

// exceedsDeadline reports whether waiting d would end after ctx's deadline.
func exceedsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}
