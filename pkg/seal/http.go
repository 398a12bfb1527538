package seal

import (
	"encoding/json"
	"net/http"
	"sync"
)

// RotatePath is where `ctl secret rotate-key` asks an agent to rotate the data key.
const RotatePath = "/cluster/datakey/rotate"

// RotateLine is one line of the rotation's answer, newline-delimited JSON: progress lines, then
// one result or error line. A stream that ends without either was cut: running it again
// finishes the rotation.
type RotateLine struct {
	Progress *Progress     `json:"progress,omitempty"`
	Result   *RotateResult `json:"result,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// RotateHandler serves POST RotatePath: it runs Rotate and streams its progress. One rotation
// at a time per agent (another is 409); rotations started on two agents at once are still
// safe, every write being compare-and-swap.
func (s *Store) RotateHandler() http.Handler {
	var running sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !running.TryLock() {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "a data key rotation is already running on this agent"})
			return
		}
		defer running.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		fl, _ := w.(http.Flusher)
		send := func(l RotateLine) {
			_ = enc.Encode(l)
			if fl != nil {
				fl.Flush()
			}
		}
		res, err := s.Rotate(r.Context(), func(p Progress) { send(RotateLine{Progress: &p}) })
		if err != nil {
			s.log.Warn("data key rotation failed", "err", err)
			send(RotateLine{Error: err.Error()})
			return
		}
		send(RotateLine{Result: &res})
	})
}
