// Choosing upstreams for one request: the order it tries them in (priority, weighted, least
// latency; ties take turns) and the first available one whose breaker admits an attempt.

package httpproxy

import (
	"math"
)

// order returns the indexes of st.ups in the order this request tries them (before skipping
// the unhealthy, parked and open ones).
func (h *Handler) order(st *handlerState) []int {
	n := len(st.ups)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if n < 2 {
		return idx
	}
	rr := h.rr.Add(1) - 1
	switch st.policy.Order {
	case OrderWeighted:
		// Efraimidis-Spirakis: a weighted random permutation in one pass.
		keys := make([]float64, n)
		for i, u := range st.ups {
			keys[i] = -math.Log(1-h.cfg.Rand()) / float64(u.Weight)
		}
		insertionSort(idx, func(a, b int) bool { return keys[a] < keys[b] })
		return idx
	case OrderLeastLatency:
		lat := func(i int) float64 { return math.Float64frombits(st.ups[i].ewma.Load()) }
		insertionSort(idx, func(a, b int) bool { return lat(a) < lat(b) })
		rotateTies(idx, rr, func(a, b int) bool { return lat(a) == lat(b) })
	default:
		insertionSort(idx, func(a, b int) bool { return st.ups[a].Priority < st.ups[b].Priority })
		rotateTies(idx, rr, func(a, b int) bool { return st.ups[a].Priority == st.ups[b].Priority })
	}
	return idx
}

func insertionSort(idx []int, less func(a, b int) bool) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && less(idx[j], idx[j-1]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

// rotateTies rotates every run of equal entries by rr, so that equals take turns.
func rotateTies(idx []int, rr uint64, eq func(a, b int) bool) {
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && eq(idx[start], idx[end]) {
			end++
		}
		if k := int(rr % uint64(end-start)); k > 0 {
			run := idx[start:end]
			tmp := append(append([]int(nil), run[k:]...), run[:k]...)
			copy(run, tmp)
		}
		start = end
	}
}

// available reports whether u may be picked now (without asking its breaker).
func (u *upstreamState) available(now int64) bool {
	return u.Healthy && u.parkedUntil.Load() <= now
}

// pick returns the first upstream of order not tried yet that is available and whose breaker
// admits an attempt.
func (h *Handler) pick(st *handlerState, order []int, tried []bool) (*upstreamState, int, func(error)) {
	now := h.cfg.Clock.Now().UnixNano()
	for _, i := range order {
		u := st.ups[i]
		if tried[i] || !u.available(now) {
			continue
		}
		if done, ok := u.br.allow(); ok {
			return u, i, done
		}
	}
	return nil, -1, nil
}

// hasAlternative reports whether another upstream could take a retry (breakers not asked).
func (h *Handler) hasAlternative(st *handlerState, tried []bool) bool {
	now := h.cfg.Clock.Now().UnixNano()
	for i, u := range st.ups {
		if !tried[i] && u.available(now) && u.br.state() != StateOpen {
			return true
		}
	}
	return false
}
