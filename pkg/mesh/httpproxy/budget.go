package httpproxy

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// budgetBuckets and budgetBucket make the retry budget's 10 s window.
const (
	budgetBuckets = 10
	budgetBucket  = time.Second
)

// budget caps retries (other than of requests never sent) at percent of the requests of the
// last 10 s plus MinRetries: Envoy's retry_budget, Linkerd's retry budget.
type budget struct {
	clock   clock.PassiveClock
	percent int // negative: unlimited

	mu      sync.Mutex
	start   int64 // guarded by mu: index (unix time / bucket) of buckets[0]
	reqs    [budgetBuckets]int64
	retries [budgetBuckets]int64
}

func newBudget(percent int, clk clock.PassiveClock) *budget {
	return &budget{clock: clk, percent: percent}
}

// advanceLocked moves the window to now and returns the current bucket.
func (b *budget) advanceLocked() int {
	now := b.clock.Now().UnixNano() / int64(budgetBucket)
	cur := now - b.start
	if cur >= budgetBuckets {
		shift := cur - budgetBuckets + 1
		if shift >= budgetBuckets {
			b.reqs, b.retries = [budgetBuckets]int64{}, [budgetBuckets]int64{}
		} else {
			copy(b.reqs[:], b.reqs[shift:])
			copy(b.retries[:], b.retries[shift:])
			for i := budgetBuckets - int(shift); i < budgetBuckets; i++ {
				b.reqs[i], b.retries[i] = 0, 0
			}
		}
		b.start += shift
		cur = budgetBuckets - 1
	} else if cur < 0 { // clock stepped back: start over
		b.start, cur = now, 0
		b.reqs, b.retries = [budgetBuckets]int64{}, [budgetBuckets]int64{}
	}
	return int(cur)
}

func (b *budget) request() {
	b.mu.Lock()
	b.reqs[b.advanceLocked()]++
	b.mu.Unlock()
}

// tryRetry takes one retry from the budget.
func (b *budget) tryRetry() bool {
	if b.percent < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.advanceLocked()
	var reqs, retries int64
	for i := range budgetBuckets {
		reqs += b.reqs[i]
		retries += b.retries[i]
	}
	if retries >= MinRetries+reqs*int64(b.percent)/100 {
		return false
	}
	b.retries[cur]++
	return true
}
