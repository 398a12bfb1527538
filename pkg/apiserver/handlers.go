package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/store"
)

// kindOf resolves the {plural} path segment; only plural names are accepted in URLs.
func kindOf(w http.ResponseWriter, r *http.Request) (v1.KindInfo, bool) {
	plural := r.PathValue("plural")
	info, ok := v1.LookupKind(plural)
	if !ok || info.Plural != plural || info.Internal() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown kind %q (known: %s)", plural, v1.KindNames()), "")
		return v1.KindInfo{}, false
	}
	return info, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	sel, err := v1.ParseSelector(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "labelSelector")
		return
	}
	if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		s.watch(w, r, info, sel)
		return
	}
	objs, rev, err := s.cfg.Store.List(r.Context(), info.Kind, sel)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	list := v1.List{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: info.Kind + "List"}, Items: []json.RawMessage{}}
	list.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	for _, o := range objs {
		b, err := encodeJSON(redact(o))
		if err != nil {
			writeError(w, http.StatusInternalServerError, "encode "+v1.KeyOf(o).String()+": "+err.Error(), "")
			return
		}
		list.Items = append(list.Items, b)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	reveal := r.URL.Query().Get("reveal") == "true"
	if reveal {
		if p, _ := auth.PrincipalFrom(r.Context()); !p.Allows(auth.ScopeAdmin) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %q has the %s scope; revealing Secret values needs admin", p.Name, p.Scope), "reveal")
			return
		}
	}
	obj, err := s.cfg.Store.Get(r.Context(), info.Kind, r.PathValue("name"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if reveal && info.Kind == v1.KindSecret {
		p, _ := auth.PrincipalFrom(r.Context())
		s.audit.Info("secret revealed", "who", p.Name, "object", v1.KeyOf(obj).String(), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, obj)
		return
	}
	writeJSON(w, http.StatusOK, redact(obj))
}

// readObject decodes, defaults and validates the body; it writes the error response itself.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, info v1.KindInfo) (v1.Object, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), "")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error(), "")
		return nil, false
	}
	name := r.PathValue("name")
	obj, err := v1.Decode(body)
	if err != nil {
		var de *v1.DecodeError
		field := ""
		if errors.As(err, &de) {
			field = de.Field
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s/%s: %v", info.Plural, name, err), field)
		return nil, false
	}
	if obj.GetTypeMeta().Kind != info.Kind {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s/%s: kind %q does not match the URL (%s)", info.Plural, name, obj.GetTypeMeta().Kind, info.Plural), "kind")
		return nil, false
	}
	if got := obj.GetMetadata().Name; got != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s/%s: metadata.name %q does not match the URL", info.Plural, name, got), "metadata.name")
		return nil, false
	}
	obj.Default()
	if errs := obj.Validate(); len(errs) > 0 {
		writeInvalid(w, info, name, errs)
		return nil, false
	}
	return obj, true
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	obj, ok := s.readObject(w, r, info)
	if !ok {
		return
	}
	if s.cfg.Admit != nil {
		if errs := s.cfg.Admit(r.Context(), obj); len(errs) > 0 {
			writeInvalid(w, info, obj.GetMetadata().Name, errs)
			return
		}
	}
	ctx := r.Context()
	if dry := r.URL.Query().Get("dryRun"); dry == "true" || dry == "All" {
		out, created, err := s.dryRun(ctx, obj)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		writeJSON(w, statusFor(created), redact(out))
		return
	}
	var out v1.Object
	var created bool
	var err error
	if svc, ok := obj.(*v1.Service); ok && svc.Spec.RestartedAt == nil {
		out, created, err = s.putKeepingRestartedAt(ctx, svc)
	} else {
		out, created, err = s.createOrUpdate(ctx, obj)
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info("object written", "object", v1.KeyOf(out).String(), "created", created, "resourceVersion", out.GetMetadata().ResourceVersion)
	writeJSON(w, statusFor(created), redact(out))
}

func statusFor(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// createOrUpdate implements PUT: update when the object exists, create otherwise. A
// resourceVersion makes it a compare-and-swap on an existing object.
//
// Which of the two to try first is decided by a local (stale) read: a write that the state
// machine refuses still costs a raft entry the size of the object on every member's log, so
// guessing wrong on every create (as trying Update first did) doubled the log of a cluster
// being filled. A stale guess is corrected by the refusal, as a race with another writer is.
func (s *Server) createOrUpdate(ctx context.Context, obj v1.Object) (v1.Object, bool, error) {
	k := v1.KeyOf(obj)
	exists := true
	if obj.GetMetadata().ResourceVersion == "" {
		_, err := s.cfg.Store.Get(ctx, k.Kind, k.Name, store.Stale())
		exists = !errors.Is(err, store.ErrNotFound)
	}
	for attempt := 0; ; attempt++ {
		if exists {
			out, err := s.cfg.Store.Update(ctx, obj)
			if err == nil {
				return out, false, nil
			}
			if !errors.Is(err, store.ErrNotFound) || attempt > 2 {
				return nil, false, err
			}
			if obj.GetMetadata().ResourceVersion != "" {
				return nil, false, fmt.Errorf("%s: %w: resourceVersion %s given but the object does not exist", k, store.ErrConflict, obj.GetMetadata().ResourceVersion)
			}
		}
		out, err := s.cfg.Store.Create(ctx, obj)
		if err == nil {
			return out, true, nil
		}
		if !errors.Is(err, store.ErrAlreadyExists) || attempt > 2 {
			return nil, false, err
		}
		exists = true
	}
}

// dryRun applies the write to a scratch copy of the current object with the store's own state
// machine, so the answer is exactly what a real write would store.
func (s *Server) dryRun(ctx context.Context, obj v1.Object) (v1.Object, bool, error) {
	k := v1.KeyOf(obj)
	table := scratchTable{}
	op := store.OpCreate
	cur, err := s.cfg.Store.Get(ctx, k.Kind, k.Name)
	switch {
	case err == nil:
		b, err := json.Marshal(cur)
		if err != nil {
			return nil, false, err
		}
		table[k] = b
		op = store.OpUpdate
		keepRestartedAt(cur, obj)
	case errors.Is(err, store.ErrNotFound):
		if obj.GetMetadata().ResourceVersion != "" {
			return nil, false, fmt.Errorf("%s: %w: resourceVersion given but the object does not exist", k, store.ErrConflict)
		}
	default:
		return nil, false, err
	}
	rev, err := s.cfg.Store.Revision(ctx)
	if err != nil {
		return nil, false, err
	}
	m, err := store.NewMutation(op, obj, time.Now(), "(dry-run)")
	if err != nil {
		return nil, false, err
	}
	res, err := store.Apply(table, rev+1, m)
	if err != nil {
		return nil, false, err
	}
	out, err := store.DecodeObject(res.Object)
	return out, op == store.OpCreate, err
}

type scratchTable map[v1.Key][]byte

func (t scratchTable) Get(kind, name string) ([]byte, error) {
	return t[v1.Key{Kind: kind, Name: name}], nil
}
func (t scratchTable) Put(kind, name string, b []byte) error {
	t[v1.Key{Kind: kind, Name: name}] = b
	return nil
}
func (t scratchTable) Delete(kind, name string) error {
	delete(t, v1.Key{Kind: kind, Name: name})
	return nil
}

func (s *Server) putStatus(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	obj, ok := s.readObject(w, r, info)
	if !ok {
		return
	}
	out, err := s.cfg.Store.UpdateStatus(r.Context(), obj)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redact(out))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	info, ok := kindOf(w, r)
	if !ok {
		return
	}
	out, err := s.cfg.Store.Delete(r.Context(), info.Kind, r.PathValue("name"), r.URL.Query().Get("resourceVersion"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info("object deleted", "object", v1.KeyOf(out).String(), "finalizers", out.GetMetadata().Finalizers)
	writeJSON(w, http.StatusOK, redact(out))
}

func (s *Server) undo(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Undo == nil {
		writeError(w, http.StatusNotFound, "rollout undo is not available on this agent", "")
		return
	}
	var rev int64
	if v := r.URL.Query().Get("toRevision"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("services/%s: toRevision %q is not a revision number", r.PathValue("name"), v), "toRevision")
			return
		}
		rev = n
	}
	out, err := s.cfg.Undo(r.Context(), r.PathValue("name"), rev)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
