package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnknownKind is returned when an object names a kind this package does not define.
var ErrUnknownKind = errors.New("v1: unknown kind")

// DecodeError is a decoding failure, with the JSON field when it is known.
type DecodeError struct {
	Field string
	Err   error
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode decodes one JSON object strictly: its kind picks the type, unknown fields and trailing
// data are errors. It does not default or validate. It is for user input (the API, ctl); what a
// store wrote is read with DecodeLenient.
func Decode(data []byte) (Object, error) { return decode(data, true) }

// DecodeLenient decodes one JSON object like Decode but ignores fields this version does not
// know. It is for the storage path: an object written by a newer agent (through the raft log or
// a snapshot) must still be readable by an older one during a rolling upgrade; strictness
// belongs at the API boundary, where a typo should be an error.
func DecodeLenient(data []byte) (Object, error) { return decode(data, false) }

func decode(data []byte, strict bool) (Object, error) {
	// The kind picks the type. Reading it with a full decode of the type meta would scan the
	// whole object twice more (a List of large Secrets spent half its time there): kindOf
	// reads only up to the first "kind", which an encoder writes second. The object decoded
	// with that type must carry the same kind (a later duplicate wins in encoding/json);
	// anything else, errors included, takes the full path, which reports them.
	if kind := kindOf(data); kind != "" {
		if info, ok := LookupKind(kind); ok && info.Kind == kind && !(strict && info.Internal()) {
			obj := info.New()
			if err := decodeInto(data, obj, strict); err == nil && obj.GetTypeMeta().Kind == kind {
				return obj, nil
			}
		}
	}
	var head TypeMeta
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &DecodeError{Err: fmt.Errorf("malformed JSON: %w", err)}
	}
	if head.Kind == "" {
		return nil, &DecodeError{Field: "kind", Err: errors.New("required")}
	}
	info, ok := LookupKind(head.Kind)
	if !ok || info.Kind != head.Kind || (strict && info.Internal()) {
		return nil, &DecodeError{Field: "kind", Err: fmt.Errorf("%w %q (known: %s)", ErrUnknownKind, head.Kind, kindList())}
	}
	obj := info.New()
	if err := decodeInto(data, obj, strict); err != nil {
		return nil, err
	}
	return obj, nil
}

// kindOf returns the string value of the first top-level "kind" member of a JSON object,
// reading no further than it, or "" when it cannot tell cheaply (not an object, no such member
// before a malformed one, a kind that is not a string).
func kindOf(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := t.(string)
		if key == "kind" {
			v, err := dec.Token()
			if err != nil {
				return ""
			}
			s, _ := v.(string)
			return s
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

func decodeInto(data []byte, obj Object, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(obj); err != nil {
		return &DecodeError{Field: fieldOf(err), Err: cleanJSONError(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &DecodeError{Err: errors.New("trailing data after the object")}
	}
	return nil
}

func kindList() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Kind
	}
	return strings.Join(names, ", ")
}

// fieldOf extracts the JSON path encoding/json reports, when it reports one.
func fieldOf(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return strings.Trim(rest, `"`)
	}
	return ""
}

func cleanJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("cannot use %s as %s", te.Value, te.Type)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return errors.New("unknown field")
	}
	return errors.New(strings.TrimPrefix(msg, "json: "))
}

// Encode marshals an object as compact JSON.
func Encode(o Object) ([]byte, error) { return json.Marshal(o) }
