package dns

// WithClock makes the controller read time from clock. Only tests step the controller's time:
// the agent runs it on the wall clock (realClock).
func WithClock(clock Clock) Option { return func(c *Controller) { c.clock = clock } }
