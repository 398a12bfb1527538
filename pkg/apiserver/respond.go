package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// redact hides Secret values from every response.
func redact(o v1.Object) v1.Object {
	if sec, ok := o.(*v1.Secret); ok {
		return sec.Redact()
	}
	return o
}

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// encodeJSON marshals v without HTML escaping, followed by a newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := encodeJSON(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response: "+err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	b, _ := json.Marshal(apiError{Error: msg, Field: field})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeInvalid(w http.ResponseWriter, info v1.KindInfo, name string, errs v1.ErrorList) {
	err := errs.ToAggregate(info.Plural, name)
	writeError(w, http.StatusUnprocessableEntity, err.Error(), errs[0].Field)
}

// errorStatus maps store errors to HTTP status codes.
func errorStatus(err error) (int, string) {
	var inv *v1.InvalidError
	switch {
	case errors.As(err, &inv):
		return http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, trimStorePrefix(err)
	case errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrConflict):
		return http.StatusConflict, trimStorePrefix(err)
	case errors.Is(err, store.ErrTooOld):
		return http.StatusGone, trimStorePrefix(err)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, v1.ErrUnknownKind):
		return http.StatusNotFound, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

func trimStorePrefix(err error) string { return strings.ReplaceAll(err.Error(), "store: ", "") }

func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	code, msg := errorStatus(err)
	field := ""
	var inv *v1.InvalidError
	if errors.As(err, &inv) && len(inv.Errors) > 0 {
		field = inv.Errors[0].Field
	}
	if code >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	writeError(w, code, msg, field)
}
