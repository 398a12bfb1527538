// Objects: get, list, put (spec and status), delete and undo, and decoding an object by its kind.

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// DecodeObject decodes an object the server sent. Unlike v1.Decode it tolerates fields this
// client does not know, so that an older ctl keeps working against a newer server.
func DecodeObject(b []byte) (v1.Object, error) {
	var tm v1.TypeMeta
	if err := json.Unmarshal(b, &tm); err != nil {
		return nil, fmt.Errorf("decode server answer: %w", err)
	}
	info, ok := v1.LookupKind(tm.Kind)
	if !ok {
		return nil, fmt.Errorf("decode server answer: unknown kind %q", tm.Kind)
	}
	obj := info.New()
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, fmt.Errorf("decode server answer: %w", err)
	}
	return obj, nil
}

func objectPath(kind, name string) (string, error) {
	p, err := plural(kind)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errors.New("a name is required")
	}
	return "/apis/v1/" + p + "/" + url.PathEscape(name), nil
}

// Get returns one object. kind may be any name v1.LookupKind accepts.
func (c *Client) Get(ctx context.Context, kind, name string) (v1.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return nil, err
	}
	return DecodeObject(b)
}

// RevealSecret returns a Secret with its values (GET ...?reveal=true). The server allows it to
// admin tokens only and records it in its audit log.
func (c *Client) RevealSecret(ctx context.Context, name string) (*v1.Secret, error) {
	p, err := objectPath(v1.KindSecret, name)
	if err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodGet, p, url.Values{"reveal": {"true"}}, nil)
	if err != nil {
		return nil, err
	}
	obj, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	sec, ok := obj.(*v1.Secret)
	if !ok {
		return nil, fmt.Errorf("secrets/%s: the server answered a %s", name, obj.GetTypeMeta().Kind)
	}
	return sec, nil
}

// ListResult is a list answer.
type ListResult struct {
	// ResourceVersion is the revision the list was read at; a watch from it misses nothing.
	ResourceVersion string
	Items           []v1.Object
}

// List returns the objects of a kind matching the label selector ("" for all).
func (c *Client) List(ctx context.Context, kind, selector string) (*ListResult, error) {
	pl, err := plural(kind)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	b, _, err := c.call(ctx, http.MethodGet, "/apis/v1/"+pl, q, nil)
	if err != nil {
		return nil, err
	}
	var l v1.List
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("decode %s list: %w", pl, err)
	}
	res := &ListResult{ResourceVersion: l.Metadata.ResourceVersion, Items: make([]v1.Object, 0, len(l.Items))}
	for _, raw := range l.Items {
		o, err := DecodeObject(raw)
		if err != nil {
			return nil, err
		}
		res.Items = append(res.Items, o)
	}
	return res, nil
}

// PutOptions tune Put.
type PutOptions struct {
	// DryRun validates and returns the object as it would be stored, changing nothing.
	DryRun bool
}

// PutResult is what Put returns.
type PutResult struct {
	Object v1.Object
	// Created is true when the server answered 201 Created.
	Created bool
}

// Put creates or updates obj (compare-and-swap when it carries metadata.resourceVersion).
func (c *Client) Put(ctx context.Context, obj v1.Object, opts PutOptions) (*PutResult, error) {
	return c.put(ctx, obj, "", opts)
}

// PutStatus replaces obj's status.
func (c *Client) PutStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	r, err := c.put(ctx, obj, "/status", PutOptions{})
	if err != nil {
		return nil, err
	}
	return r.Object, nil
}

func (c *Client) put(ctx context.Context, obj v1.Object, sub string, opts PutOptions) (*PutResult, error) {
	p, err := objectPath(obj.GetTypeMeta().Kind, obj.GetMetadata().Name)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if opts.DryRun {
		q = url.Values{"dryRun": {"true"}}
	}
	b, code, err := c.call(ctx, http.MethodPut, p+sub, q, body)
	if err != nil {
		return nil, err
	}
	out, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	return &PutResult{Object: out, Created: code == http.StatusCreated}, nil
}

// Delete deletes an object. The answer is the object as it was, or as it now is when
// finalizers hold it (deletionTimestamp set); it is nil when the server sent no body.
func (c *Client) Delete(ctx context.Context, kind, name string) (v1.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodDelete, p, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	o, err := DecodeObject(b)
	if err != nil {
		return nil, nil // the delete happened; an unexpected body does not undo it
	}
	return o, nil
}

// Undo rolls a Service back to its previous spec.
func (c *Client) Undo(ctx context.Context, name string) (*v1.Service, error) {
	return c.UndoTo(ctx, name, 0)
}

// UndoTo rolls a Service back to revision rev of its history (0: the previous spec).
func (c *Client) UndoTo(ctx context.Context, name string, rev int64) (*v1.Service, error) {
	p, err := objectPath(v1.KindService, name)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if rev != 0 {
		q = url.Values{"toRevision": {strconv.FormatInt(rev, 10)}}
	}
	b, _, err := c.call(ctx, http.MethodPost, p+"/undo", q, nil)
	if err != nil {
		return nil, err
	}
	o, err := DecodeObject(b)
	if err != nil {
		return nil, err
	}
	s, ok := o.(*v1.Service)
	if !ok {
		return nil, fmt.Errorf("undo: server answered a %s", o.GetTypeMeta().Kind)
	}
	return s, nil
}
