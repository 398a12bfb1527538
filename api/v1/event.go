package v1

import (
	"regexp"
	"time"
)

// KindEvent is the kind of Events: what happened to an object (scheduled, pulled, started,
// restarted, moved, DNS written, lease changed), as `kubectl get events` shows them.
//
// Event is a user-visible kind (served under /apis/v1/events with the read scope, listed by
// `ctl get events`, watched by `ctl get events -w` and the status page): operators read it
// to see what the cluster did without ssh, so it cannot be internal like Keyring, which the
// API refuses to serve. Agents write Events through pkg/events (debounced, rate-bounded),
// never through the API; a PUT by an admin token is accepted like any object's, so that
// tools can post their own.
const KindEvent = "Event"

// Event is one series of occurrences of the same thing happening to one object, reported by
// one node: a flapping container is one Event whose count grows, not one Event per flap.
type Event struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     EventSpec   `json:"spec"`
	Status   EventStatus `json:"status,omitempty"`
}

// EventType is Normal or Warning, as in Kubernetes.
type EventType string

// Event types.
const (
	EventNormal  EventType = "Normal"
	EventWarning EventType = "Warning"
)

// EventReason is a short CamelCase word for what happened. Controllers use the constants
// below; a reason is never compared as a string literal across packages.
type EventReason string

// Event reasons the controllers report.
const (
	// Scheduler (controllers/scheduler).
	EventScheduled        EventReason = "Scheduled"        // a replica was placed on a node
	EventMoved            EventReason = "Moved"            // a replica was placed elsewhere; the message says why
	EventFailedScheduling EventReason = "FailedScheduling" // replicas found no node
	// Node reconciler (controllers/node).
	EventPulling      EventReason = "Pulling"      // the image is being pulled
	EventPulled       EventReason = "Pulled"       // the image is there after a pull
	EventFailedPull   EventReason = "FailedPull"   // the pull failed
	EventFailedCreate EventReason = "FailedCreate" // the container could not be created or started
	EventStarted      EventReason = "Started"      // a container was created and started
	EventExited       EventReason = "Exited"       // a container exited; the message has the exit code
	EventRestarted    EventReason = "Restarted"    // an exited container was started again
	EventUnhealthy    EventReason = "Unhealthy"    // a health check failed and the container was restarted
	// DNS controller (controllers/dns).
	EventDNSWritten EventReason = "DNSRecordWritten" // records were created, updated or deleted in the provider
	EventDNSFailed  EventReason = "DNSRecordFailed"  // the provider refused or failed
	// Leases (controllers/lease).
	EventLeaseAcquired EventReason = "LeaseAcquired" // a node started leading
	EventLeaseLost     EventReason = "LeaseLost"     // a node stopped leading while it meant to keep on
	EventLeaseReleased EventReason = "LeaseReleased" // a node gave the lease up (shutdown, role removed)
)

// Labels the store indexes Events by, so that `ctl get events --for svc/web` and `ctl
// describe` select an object's Events with a label selector. Default sets them from
// spec.involvedObject.
const (
	LabelEventKind = "constellation/involved-kind"
	LabelEventName = "constellation/involved-name"
)

// MaxEventMessage is the longest message an Event carries; longer ones are cut.
const MaxEventMessage = 1024

// ObjectReference names an object by kind and name.
type ObjectReference struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// EventSpec is the whole of an Event: an Event has no desired state, the spec records it.
type EventSpec struct {
	// InvolvedObject is what the Event is about.
	InvolvedObject ObjectReference `json:"involvedObject"`
	Type           EventType       `json:"type"`
	Reason         EventReason     `json:"reason"`
	Message        string          `json:"message"`
	// Component is the controller that reported it: scheduler, node, dns, lease.
	Component string `json:"component,omitempty"`
	// Node is the node whose agent reported it.
	Node string `json:"node,omitempty"`
	// Count is how many times it happened between FirstSeen and LastSeen.
	Count     int32     `json:"count"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// EventStatus is empty; it exists so every kind has the same shape.
type EventStatus struct{}

var eventReasonRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,127}$`)

func (e *Event) GetMetadata() *ObjectMeta { return &e.Metadata }
func (e *Event) DeepCopyObject() Object   { return deepCopy(e) }

// Default fills in apiVersion, kind, the index labels and a count of at least one.
func (e *Event) Default() {
	defaultMeta(&e.TypeMeta, KindEvent)
	if e.Spec.Type == "" {
		e.Spec.Type = EventNormal
	}
	if e.Spec.Count == 0 {
		e.Spec.Count = 1
	}
	if e.Spec.LastSeen.IsZero() {
		e.Spec.LastSeen = e.Spec.FirstSeen
	}
	if e.Spec.InvolvedObject.Kind != "" || e.Spec.InvolvedObject.Name != "" {
		if e.Metadata.Labels == nil {
			e.Metadata.Labels = map[string]string{}
		}
		e.Metadata.Labels[LabelEventKind] = e.Spec.InvolvedObject.Kind
		e.Metadata.Labels[LabelEventName] = e.Spec.InvolvedObject.Name
	}
}

// Validate reports every problem in the Event.
func (e *Event) Validate() ErrorList {
	errs := validateMeta(&e.TypeMeta, &e.Metadata, KindEvent)
	sp := path("spec")
	io := sp.child("involvedObject")
	if !labelNameRE.MatchString(e.Spec.InvolvedObject.Kind) {
		errs.add(io.child("kind").String(), "must be a kind like \"Service\", got %q", e.Spec.InvolvedObject.Kind)
	}
	if !IsDNSLabel(e.Spec.InvolvedObject.Name) {
		errs.add(io.child("name").String(), "must be an object name (a DNS label), got %q", e.Spec.InvolvedObject.Name)
	}
	if e.Spec.Type != EventNormal && e.Spec.Type != EventWarning {
		errs.add(sp.child("type").String(), "must be Normal or Warning, got %q", e.Spec.Type)
	}
	if !eventReasonRE.MatchString(string(e.Spec.Reason)) {
		errs.add(sp.child("reason").String(), "must be a CamelCase word of at most 128 letters and digits, got %q", e.Spec.Reason)
	}
	if len(e.Spec.Message) > MaxEventMessage {
		errs.add(sp.child("message").String(), "must be at most %d bytes, got %d", MaxEventMessage, len(e.Spec.Message))
	}
	if len(e.Spec.Component) > 63 {
		errs.add(sp.child("component").String(), "must be at most 63 characters")
	}
	if len(e.Spec.Node) > 253 {
		errs.add(sp.child("node").String(), "must be at most 253 characters")
	}
	if e.Spec.Count < 1 {
		errs.add(sp.child("count").String(), "must be at least 1, got %d", e.Spec.Count)
	}
	if e.Spec.FirstSeen.IsZero() {
		errs.add(sp.child("firstSeen").String(), "required")
	}
	if e.Spec.LastSeen.Before(e.Spec.FirstSeen) {
		errs.add(sp.child("lastSeen").String(), "must not be before firstSeen")
	}
	if e.Metadata.Labels[LabelEventKind] != e.Spec.InvolvedObject.Kind || e.Metadata.Labels[LabelEventName] != e.Spec.InvolvedObject.Name {
		errs.add(path("metadata").child("labels").String(), "%s and %s must match spec.involvedObject", LabelEventKind, LabelEventName)
	}
	return errs
}
