package v1

import (
	"fmt"
	"strings"
)

// FieldError is one problem at one field path ("spec.ports[1].containerPort").
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ErrorList is every problem found in one object.
type ErrorList []*FieldError

// add appends a problem at field, formatted.
func (l *ErrorList) add(field, format string, args ...any) {
	*l = append(*l, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// ToAggregate returns nil for an empty list, else an *InvalidError naming the object.
func (l ErrorList) ToAggregate(plural, name string) error {
	if len(l) == 0 {
		return nil
	}
	return &InvalidError{Plural: plural, Name: name, Errors: l}
}

// InvalidError is the error for an object that failed validation. Its message names the object
// and every field: "services/web: spec.ports[1].containerPort: must be 1-65535, got 0".
type InvalidError struct {
	Plural string
	Name   string
	Errors ErrorList
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	obj := e.Plural
	if e.Name != "" {
		obj += "/" + e.Name
	}
	return obj + ": " + strings.Join(parts, "; ")
}

// path builds field paths without fmt in the common case.
type path string

func (p path) child(name string) path {
	if p == "" {
		return path(name)
	}
	return path(string(p) + "." + name)
}

func (p path) index(i int) path { return path(fmt.Sprintf("%s[%d]", p, i)) }

func (p path) key(k string) path { return path(fmt.Sprintf("%s[%s]", p, k)) }

func (p path) String() string { return string(p) }
