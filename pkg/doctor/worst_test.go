package doctor

import "github.com/constellation-sh/constellation/pkg/nodeapi"

// Worst is the worst status of checks (OK for none).
func Worst(checks []nodeapi.Check) nodeapi.CheckStatus {
	w := OK
	for _, c := range checks {
		if rank(c.Status) > rank(w) {
			w = c.Status
		}
	}
	return w
}

func rank(s nodeapi.CheckStatus) int {
	switch s {
	case OK:
		return 0
	case Warn:
		return 1
	}
	return 2 // FAIL, and anything unknown is treated as one
}
