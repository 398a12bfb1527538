package v1

import (
	"strings"
	"testing"
	"time"
)

func validEvent() *Event {
	t := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	e := &Event{Metadata: ObjectMeta{Name: "web-0123456789abcdef"}, Spec: EventSpec{
		InvolvedObject: ObjectReference{Kind: KindService, Name: "web"}, Type: EventWarning, Reason: EventRestarted,
		Message: "replica 0 restarted after exit code 137", Component: "node", Node: "n1", Count: 3, FirstSeen: t, LastSeen: t.Add(time.Minute)}}
	e.Default()
	return e
}

func TestEventValidation(t *testing.T) {
	if errs := validEvent().Validate(); len(errs) > 0 {
		t.Fatalf("valid event: %v", errs)
	}
	for _, tc := range []struct {
		field  string
		change func(*Event)
	}{
		{"spec.involvedObject.kind", func(e *Event) { e.Spec.InvolvedObject.Kind = "" }},
		{"spec.involvedObject.name", func(e *Event) { e.Spec.InvolvedObject.Name = "Web_1" }},
		{"spec.type", func(e *Event) { e.Spec.Type = "Error" }},
		{"spec.reason", func(e *Event) { e.Spec.Reason = "not camel" }},
		{"spec.message", func(e *Event) { e.Spec.Message = strings.Repeat("x", MaxEventMessage+1) }},
		{"spec.count", func(e *Event) { e.Spec.Count = -1 }},
		{"spec.firstSeen", func(e *Event) { e.Spec.FirstSeen, e.Spec.LastSeen = time.Time{}, time.Time{} }},
		{"spec.lastSeen", func(e *Event) { e.Spec.LastSeen = e.Spec.FirstSeen.Add(-time.Second) }},
		{"metadata.labels", func(e *Event) { e.Metadata.Labels[LabelEventName] = "other" }},
		{"metadata.name", func(e *Event) { e.Metadata.Name = "web.1" }},
	} {
		e := validEvent()
		tc.change(e)
		errs := e.Validate()
		found := false
		for _, err := range errs {
			found = found || err.Field == tc.field
		}
		if !found {
			t.Errorf("%s: no error for it, got %v", tc.field, errs)
		}
	}
}

// Events decode through the one strict decoder; the kind is served (not internal).
func TestEventKind(t *testing.T) {
	info, ok := LookupKind("ev")
	if !ok || info.Kind != KindEvent || info.Plural != "events" || info.Internal() {
		t.Fatalf("lookup ev: %+v %v", info, ok)
	}
	b, err := Encode(validEvent())
	if err != nil {
		t.Fatal(err)
	}
	obj, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := obj.(*Event); !ok || e.Spec.Count != 3 || e.Spec.Reason != EventRestarted {
		t.Fatalf("decoded %#v", obj)
	}
	if _, err := Decode([]byte(`{"apiVersion":"constellation/v1","kind":"Event","metadata":{"name":"e"},"spec":{"bogus":1}}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

// FuzzDecodeEvent is FuzzDecodeValidate seeded with Events.
func FuzzDecodeEvent(f *testing.F) {
	b, _ := Encode(validEvent())
	f.Add(b)
	f.Add([]byte(`{"kind":"Event","metadata":{"name":"e"},"spec":{"involvedObject":{"kind":"Lease","name":"lb"},"reason":"LeaseAcquired","firstSeen":"2026-12-01T10:00:00+01:00"}}`))
	f.Add([]byte(`{"kind":"Event","metadata":{"name":"e","labels":{"constellation/involved-kind":"x"}},"spec":{"count":2147483647,"lastSeen":"0001-01-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Decode(data)
		if err != nil {
			return
		}
		obj.Default()
		if errs := obj.Validate(); len(errs) > 0 {
			_ = errs.ToAggregate("x", "y").Error()
			return
		}
		b, err := Encode(obj)
		if err != nil {
			t.Fatalf("encode a valid object: %v", err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("decode what we encoded: %v\n%s", err, b)
		}
		if b2, _ := Encode(back); string(b) != string(b2) {
			t.Fatalf("round trip changed the object:\n%s\n%s", b, b2)
		}
		if errs := back.Validate(); len(errs) > 0 {
			t.Fatalf("valid object invalid after round trip: %v", errs)
		}
	})
}
