package node

import (
	"fmt"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/events"
)

// eventComponent names the node reconciler in the Events it reports.
const eventComponent = "node"

// event reports something that happened to a replica of service name on this node (nil
// recorder: nothing). The message is scrubbed of the Service's Secret values, as published
// status is. It must not be called with r.mu held.
func (r *Reconciler) event(name string, typ v1.EventType, reason v1.EventReason, format string, args ...any) {
	if r.cfg.Events == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	msg = r.scrubbers[name].Scrub(msg)
	r.mu.Unlock()
	r.cfg.Events.Eventf(events.Ref(v1.KindService, name), typ, reason, eventComponent, "%s", msg)
}

// failCreate is fail for a container that could not be created or started, reported as a
// FailedCreate Event too.
func (r *Reconciler) failCreate(name string, idx int32, reason v1.ConditionReason, err error, now time.Time) {
	r.fail(name, idx, reason, err, now)
	r.event(name, v1.EventWarning, v1.EventFailedCreate, "replica %d: %s: %v", idx, reason, err)
}

// started reports a container of replica idx started by ActStart: Restarted after an exit
// (with its exit code), Started otherwise.
func (r *Reconciler) started(name string, idx int32) {
	st := r.state(name, idx)
	r.mu.Lock()
	exited := st.reason == v1.ReasonExited || st.reason == v1.ReasonCrashLoop
	code := st.exitCode
	r.mu.Unlock()
	if exited {
		r.event(name, v1.EventNormal, v1.EventRestarted, "replica %d restarted after exit code %d", idx, code)
		return
	}
	r.event(name, v1.EventNormal, v1.EventStarted, "replica %d started", idx)
}
