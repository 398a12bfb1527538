package v1

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
)

// PortRef names one of a Service's ports, as Kubernetes' IntOrString does for a container port: in
// JSON it is either a number (`"port": 8080`, the containerPort) or a string (`"port": "http"`, the
// port's name, or a number written as a string). The empty value means "the default port" (the
// first port of the right protocol). Port names must hold a letter, so a numeric reference is never
// ambiguous.
//
// It is a string underneath so that code comparing and printing references keeps working, and it
// always marshals as a JSON string: objects written by this version stay readable by agents that
// predate int-or-string (their decoders refuse a number there), and a Service's spec hash, which
// is computed from the marshalled spec, does not change on upgrade (no container is replaced
// because its health-check port was re-encoded).
type PortRef string

// PortNumber returns the reference as a number when it is written as one (whatever its range).
func (p PortRef) PortNumber() (int, bool) {
	if p == "" {
		return 0, false
	}
	for _, c := range []byte(p) {
		if (c < '0' || c > '9') && c != '-' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(p))
	return n, err == nil
}

// String returns the reference as written: a name or a decimal number.
func (p PortRef) String() string { return string(p) }

var portRefType = reflect.TypeOf(PortRef(""))

// UnmarshalJSON accepts a JSON integer or a non-empty JSON string. A wrong type is reported as a
// *json.UnmarshalTypeError, so that the decoder adds the field path (spec.healthCheck.http.port).
func (p *PortRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return &json.UnmarshalTypeError{Value: "nothing", Type: portRefType}
	case string(b) == "null":
		// As encoding/json does for plain strings: null leaves the value alone.
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			// An empty string cannot be told from "not set" once decoded; refuse it where it
			// was written rather than silently choosing the default port.
			return &json.UnmarshalTypeError{Value: `"" (omit the field for the default port)`, Type: portRefType}
		}
		*p = PortRef(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		n, err := strconv.ParseInt(string(b), 10, 32)
		if err != nil {
			return &json.UnmarshalTypeError{Value: "number " + string(b), Type: portRefType}
		}
		*p = PortRef(strconv.FormatInt(n, 10))
		return nil
	default:
		v := "value"
		switch b[0] {
		case '{':
			v = "object"
		case '[':
			v = "array"
		case 't', 'f':
			v = "bool"
		}
		return &json.UnmarshalTypeError{Value: v, Type: portRefType}
	}
}
