package proxy

import (
	"cmp"
	"slices"
)

// Endpoint is one place a Service port can be reached: a replica's container address (when it
// runs on this node) or its node's address and published port (elsewhere).
type Endpoint struct {
	// Node is the node the replica runs on (for logs and Snapshot only).
	Node string
	// Address is the ip:port to dial (a host name would be resolved on every connect).
	Address string
	// Healthy is the replica's health as this node sees it; an unhealthy endpoint gets no new
	// connections (open ones are left alone).
	Healthy bool
	// Local is true when the replica runs on this node; local endpoints are tried first.
	Local bool
}

// Candidate is an endpoint with what the proxy knows of it right now.
type Candidate struct {
	Endpoint
	// Active is the number of connections (UDP: sessions) this proxy has open to it, counting
	// connects in progress.
	Active int64
	// Suspect is true when a connect to it failed recently (Config.FailureBackoff): it is still
	// tried, but only after every endpoint that is not suspect.
	Suspect bool
}

// Order returns the indexes into cands in the order a new connection should try them:
//
//  1. unhealthy endpoints are left out altogether;
//  2. suspect endpoints (a connect failed moments ago) go after all others, so that a dead node
//     costs one failed connect, not one per new connection, until health catches up;
//  3. local endpoints come before remote ones (no hop across the network when a healthy replica
//     is here);
//  4. within each group, fewer open connections first (least connections);
//  5. endpoints equal on all of these are ordered by Address, then rotated by
//     rr modulo the size of the tie: the caller passes a counter it bumps for every new
//     connection, so short connections (which leave every count at 0) go round robin, and the
//     result is deterministic for a given rr (tests pin it).
//
// Duplicated addresses are kept as they come (the caller should not send them). Order does not
// modify cands. The later entries are the retry order after a failed connect.
func Order(cands []Candidate, rr uint64) []int {
	idx := make([]int, 0, len(cands))
	for i, c := range cands {
		if c.Healthy {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ca, cb := cands[a], cands[b]
		if ca.Suspect != cb.Suspect {
			if cb.Suspect {
				return -1
			}
			return 1
		}
		if ca.Local != cb.Local {
			if ca.Local {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(ca.Active, cb.Active); c != 0 {
			return c
		}
		return cmp.Compare(ca.Address, cb.Address)
	})
	// Rotate each run of ties.
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && tied(cands[idx[start]], cands[idx[end]]) {
			end++
		}
		if n := end - start; n > 1 {
			rotate(idx[start:end], int(rr%uint64(n)))
		}
		start = end
	}
	return idx
}

// rotate moves the first k elements of s to its end.
func rotate(s []int, k int) {
	if k == 0 {
		return
	}
	slices.Reverse(s[:k])
	slices.Reverse(s[k:])
	slices.Reverse(s)
}

func tied(a, b Candidate) bool {
	return a.Suspect == b.Suspect && a.Local == b.Local && a.Active == b.Active
}
