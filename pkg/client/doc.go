// Package client is a typed Go client of Constellation's HTTP API (/apis/v1/...): get, list,
// put (create or update, optionally compare-and-swap or dry-run), status, delete, watch, the
// Service undo action and the routes view. ctl, tests and the end-to-end suites use it.
//
// Errors from the server are *Error values carrying the HTTP status code, the message and the
// failing field; a server that cannot be reached is a *ConnError naming the server.
//
// It imports api/v1 only; it must not import pkg/store, pkg/apiserver or controllers, so that it
// stays a thin, dependency-free view of the wire contract.
package client
