package httpproxy

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"k8s.io/utils/clock"
)

// BreakerState is an upstream breaker's state as metrics, logs and Snapshot show it.
type BreakerState string

// Breaker states.
const (
	StateClosed   BreakerState = "closed"
	StateHalfOpen BreakerState = "half-open"
	StateOpen     BreakerState = "open"
)

var (
	errAttemptFailed = errors.New("httpproxy: attempt failed")
	errExcluded      = errors.New("httpproxy: outcome not counted")
)

// breaker wraps gobreaker's two-step breaker. gobreaker reads time.Now itself and has no clock
// to inject, so the open period is timed here with the injected clock: gobreaker's own Timeout
// is 1ns (it is half-open as soon as it is asked after opening) and allow refuses until
// openUntil on our clock. The rolling window of FailureRatio is gobreaker's, on the real clock.
type breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	clock    clock.PassiveClock
	openFor  time.Duration
	onChange func(from, to BreakerState)

	mu        sync.Mutex
	openUntil time.Time    // guarded by mu
	reported  BreakerState // guarded by mu: the last state announced through onChange
}

func newBreaker(name string, p BreakerPolicy, clk clock.PassiveClock, onChange func(from, to BreakerState)) *breaker {
	b := &breaker{clock: clk, openFor: p.OpenFor, onChange: onChange, reported: StateClosed}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: uint32(p.HalfOpenRequests),
		Interval:    p.Window,
		Timeout:     time.Nanosecond,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if p.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= uint32(p.ConsecutiveFailures) {
				return true
			}
			return p.FailureRatio > 0 && c.Requests >= uint32(max(p.MinRequests, 1)) &&
				float64(c.TotalFailures) >= p.FailureRatio*float64(c.Requests)
		},
		IsSuccessful:  func(err error) bool { return err == nil },
		IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: b.gobreakerChanged,
	}
	if p.Window >= 10*time.Millisecond {
		st.BucketPeriod = p.Window / 10
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	return b
}

// gobreakerChanged runs under gobreaker's lock: it must not call into the breaker.
func (b *breaker) gobreakerChanged(_ string, _, to gobreaker.State) {
	switch to {
	case gobreaker.StateOpen:
		b.mu.Lock()
		b.openUntil = b.clock.Now().Add(b.openFor)
		b.mu.Unlock()
		b.announce(StateOpen)
	case gobreaker.StateClosed:
		b.announce(StateClosed)
	case gobreaker.StateHalfOpen:
		// Announced when our clock says the open period is over (state, allow).
	}
}

func (b *breaker) announce(s BreakerState) {
	b.mu.Lock()
	from := b.reported
	b.reported = s
	b.mu.Unlock()
	if from != s && b.onChange != nil {
		b.onChange(from, s)
	}
}

func (b *breaker) openNow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clock.Now().Before(b.openUntil)
}

// state is the breaker's state now.
func (b *breaker) state() BreakerState {
	if b.openNow() {
		return StateOpen
	}
	var s BreakerState
	switch b.cb.State() {
	case gobreaker.StateClosed:
		s = StateClosed
	default: // gobreaker's 1ns open period is always over by now
		s = StateHalfOpen
	}
	b.announce(s)
	return s
}

// allow asks for one attempt; done reports its outcome: nil a success, errAttemptFailed a
// failure, errExcluded neither (the client left, a parked 429, an attempt not made after all).
func (b *breaker) allow() (done func(error), ok bool) {
	if b.openNow() {
		return nil, false
	}
	d, err := b.cb.Allow()
	if b.cb.State() == gobreaker.StateHalfOpen {
		b.announce(StateHalfOpen)
	}
	if err != nil {
		return nil, false
	}
	var once sync.Once
	return func(err error) { once.Do(func() { d(err) }) }, true
}
