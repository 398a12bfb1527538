// Package eventstest reads the Events a test's store holds as sorted one-line strings, so the
// controllers' event tests compare what was recorded with a plain list.
package eventstest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// From says who must have recorded every Event; an empty field is not checked. An Event that
// does not match is reported with t.Errorf (the test goes on, so all mismatches are shown).
type From struct {
	Component string
	Node      string
	// Involved, when set, is the one object every Event must be about.
	Involved *v1.ObjectReference
}

// Lines lists every Event in st as "KIND/NAME TYPE REASON COUNT MESSAGE", sorted.
func Lines(t testing.TB, st store.Store, from From) []string {
	t.Helper()
	objs, _, err := st.List(context.Background(), v1.KindEvent, v1.Selector{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		e, ok := o.(*v1.Event)
		if !ok {
			t.Fatalf("list events: got %T", o)
		}
		s := e.Spec
		if (from.Component != "" && s.Component != from.Component) || (from.Node != "" && s.Node != from.Node) ||
			(from.Involved != nil && s.InvolvedObject != *from.Involved) {
			t.Errorf("event %s: recorded by %s on %s about %s/%s, want %+v", e.Metadata.Name, s.Component, s.Node,
				s.InvolvedObject.Kind, s.InvolvedObject.Name, from)
		}
		out = append(out, fmt.Sprintf("%s/%s %s %s %d %s", s.InvolvedObject.Kind, s.InvolvedObject.Name, s.Type, s.Reason, s.Count, s.Message))
	}
	sort.Strings(out)
	return out
}

// Expect fails the test unless the Events in st are exactly want (in any order).
func Expect(t testing.TB, st store.Store, from From, want ...string) {
	t.Helper()
	got := Lines(t, st, from)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if strings.Join(got, "\n") != strings.Join(w, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
	}
}
