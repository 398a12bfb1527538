package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error answer of the API: {"error": "...", "field": "..."} with its status code.
type Error struct {
	// StatusCode is the HTTP status (400, 401, 404, 409, 410, 422, 503, ...).
	StatusCode int
	// Message is the server's message; it names the object and the field.
	Message string
	// Field is the failing field path, when the server reported one.
	Field string
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("server answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// ConnError is a failure to reach the server at all.
type ConnError struct {
	Server string
	Err    error
}

func (e *ConnError) Error() string { return fmt.Sprintf("cannot reach %s: %v", e.Server, e.Err) }

func (e *ConnError) Unwrap() error { return e.Err }

// TrustError is a server that answered but whose certificate the client does not trust: no CA
// proof matched the token, the pinned fingerprint differs, or its certificate is not from the
// cluster CA.
type TrustError struct {
	Server string
	Err    error
}

func (e *TrustError) Error() string {
	return fmt.Sprintf("%s: the server's certificate is not trusted: %v", e.Server, e.Err)
}

func (e *TrustError) Unwrap() error { return e.Err }

// StatusCode returns the HTTP status of err when it is (or wraps) an *Error, else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsConflict reports whether err is a 409 answer (a stale resourceVersion).
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsGone reports whether err is a 410 answer (a watch from compacted history).
func IsGone(err error) bool { return StatusCode(err) == http.StatusGone }

// IsUnauthorized reports whether err is a 401 answer.
func IsUnauthorized(err error) bool { return StatusCode(err) == http.StatusUnauthorized }
