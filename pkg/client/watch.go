// Watching: a stream of events for one kind, decoded line by line.

package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// EventType is a watch event's type.
type EventType string

// Watch event types.
const (
	Added      EventType = "ADDED"
	Modified   EventType = "MODIFIED"
	Deleted    EventType = "DELETED"
	ErrorEvent EventType = "ERROR"
)

// Event is one watch event. Object is set for ADDED, MODIFIED and DELETED; Err for ERROR (an
// *Error whose StatusCode is 410 when history was compacted: list again and watch from there).
type Event struct {
	Type   EventType
	Object v1.Object
	Err    error
}

// WatchOptions tune Watch.
type WatchOptions struct {
	// ResourceVersion: events after this revision ("" or "0": from now).
	ResourceVersion string
	// Selector is a label selector; "" for all.
	Selector string
}

// Watch streams changes to objects of a kind. The channel is closed when ctx ends or the
// server ends the stream; a stream that breaks in the middle ends with an ERROR event.
func (c *Client) Watch(ctx context.Context, kind string, opts WatchOptions) (<-chan Event, error) {
	pl, err := plural(kind)
	if err != nil {
		return nil, err
	}
	q := url.Values{"watch": {"true"}}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	if opts.Selector != "" {
		q.Set("labelSelector", opts.Selector)
	}
	resp, err := c.do(ctx, http.MethodGet, "/apis/v1/"+pl, q, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		send := func(ev Event) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			ev, err := decodeEvent(line)
			if err != nil {
				send(Event{Type: ErrorEvent, Err: err})
				return
			}
			if !send(ev) {
				return
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			send(Event{Type: ErrorEvent, Err: &ConnError{Server: c.server, Err: err}})
		}
	}()
	return ch, nil
}

func decodeEvent(line []byte) (Event, error) {
	var raw struct {
		Type   EventType       `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("decode watch event: %w", err)
	}
	switch raw.Type {
	case Added, Modified, Deleted:
		o, err := DecodeObject(raw.Object)
		if err != nil {
			return Event{}, err
		}
		return Event{Type: raw.Type, Object: o}, nil
	case ErrorEvent:
		var eb errorBody
		_ = json.Unmarshal(raw.Object, &eb)
		e := &Error{StatusCode: eb.Code, Message: eb.Error, Field: eb.Field}
		if e.Message == "" {
			e.Message = "watch failed: " + string(raw.Object)
		}
		if e.StatusCode == 0 && strings.Contains(strings.ToLower(e.Message), "compacted") {
			e.StatusCode = http.StatusGone
		}
		return Event{Type: ErrorEvent, Err: e}, nil
	}
	return Event{}, fmt.Errorf("decode watch event: unknown type %q", raw.Type)
}
