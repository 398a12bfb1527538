package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// The per-node API (pkg/nodeapi): logs, exec and volumes of a replica, served by the agent of
// the node that runs it, reached through the agent this client talks to.

// stream sends one request with a body and no RequestTimeout (the caller's ctx bounds it) and
// returns a 2xx or 101 response; other statuses become *Error.
func (c *Client) stream(ctx context.Context, method, p string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	if c.trust != nil {
		if err := c.trust.ensure(ctx); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(p, q), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &ConnError{Server: c.server, Err: err}
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// LogOptions select a replica's log lines.
type LogOptions struct {
	Service string
	Index   int32
	// Container names the container (its ID); empty: the replica's newest on the node.
	Container string
	Follow    bool
	// Since: only lines written at or after it (zero: all).
	Since time.Time
	// Tail: only the last Tail lines already written (negative: all).
	Tail int
}

// Logs streams one replica's log lines from node to fn until the log ends, ctx ends or fn
// fails. A stream the node ends with an error returns it.
func (c *Client) Logs(ctx context.Context, node string, opts LogOptions, fn func(nodeapi.LogEntry) error) error {
	q := url.Values{"service": {opts.Service}, "index": {strconv.Itoa(int(opts.Index))}, "tail": {strconv.Itoa(opts.Tail)}}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.UTC().Format(time.RFC3339Nano))
	}
	resp, err := c.stream(ctx, http.MethodGet, nodeapi.LogsPath(node), q, nil, http.Header{"Accept": {"application/x-ndjson"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e nodeapi.LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("node %s: decode log line: %w", node, err)
		}
		if e.Error != "" {
			return errors.New(e.Error)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return &ConnError{Server: c.server, Err: fmt.Errorf("log stream of node %s: %w", node, err)}
	}
	return ctx.Err()
}

// ExecOptions is a command to run in a replica.
type ExecOptions struct {
	Service   string
	Index     int32
	Container string
	Cmd       []string
	TTY       bool
	Stdin     bool
	// Height and Width are the terminal's initial size (TTY only).
	Height, Width uint16
}

// Exec starts a command in a replica on node and returns the upgraded connection carrying the
// exec stream (nodeapi.RunSession speaks it). The caller closes it.
func (c *Client) Exec(ctx context.Context, node string, opts ExecOptions) (io.ReadWriteCloser, error) {
	q := url.Values{"service": {opts.Service}, "index": {strconv.Itoa(int(opts.Index))}, "cmd": opts.Cmd}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.TTY {
		q.Set("tty", "true")
		if opts.Height > 0 && opts.Width > 0 {
			q.Set("height", strconv.Itoa(int(opts.Height)))
			q.Set("width", strconv.Itoa(int(opts.Width)))
		}
	}
	if opts.Stdin {
		q.Set("stdin", "true")
	}
	resp, err := c.stream(ctx, http.MethodPost, nodeapi.ExecPath(node), q, nil,
		http.Header{"Connection": {"Upgrade"}, "Upgrade": {nodeapi.UpgradeProtocol}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return nil, fmt.Errorf("node %s: exec: the server answered %s instead of upgrading the connection", node, resp.Status)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, fmt.Errorf("node %s: exec: the upgraded connection is not writable", node)
	}
	return rwc, nil
}

// Volumes lists the named volumes on node (of service, or of every Service when "").
func (c *Client) Volumes(ctx context.Context, node, service string) ([]nodeapi.VolumeInfo, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	b, _, err := c.call(ctx, http.MethodGet, nodeapi.VolumesPath(node), q, nil)
	if err != nil {
		return nil, err
	}
	var l nodeapi.VolumeList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("node %s: decode volumes: %w", node, err)
	}
	return l.Items, nil
}

// BackupVolume copies a tar of volume (of replica index of service) on node to w and returns
// the bytes copied. A backup the node failed half-way is an error (the archive is incomplete).
func (c *Client) BackupVolume(ctx context.Context, node, volume, service string, index int32, w io.Writer) (int64, error) {
	q := url.Values{"service": {service}, "index": {strconv.Itoa(int(index))}}
	return c.getArchive(ctx, nodeapi.ArchivePath(node, volume), q, w, fmt.Sprintf("node %s: backup of volume %s", node, volume))
}

// getArchive copies the tar a per-node GET streams to w and returns the bytes copied. A
// failure after the first byte arrives in the nodeapi.TrailerError trailer: the archive is
// incomplete, and that is an error. what names the transfer in errors.
func (c *Client) getArchive(ctx context.Context, path string, q url.Values, w io.Writer, what string) (int64, error) {
	resp, err := c.stream(ctx, http.MethodGet, path, q, nil, http.Header{"Accept": {"application/x-tar"}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("%s: %w", what, err)
	}
	if msg := resp.Trailer.Get(nodeapi.TrailerError); msg != "" {
		return n, errors.New(msg)
	}
	return n, nil
}

// putArchive sends the tar r with a per-node PUT and decodes its JSON answer into out. The
// server's refusal is returned as it is (an *Error with its status); a reply that cannot be
// read is wrapped with what.
func (c *Client) putArchive(ctx context.Context, path string, q url.Values, r io.Reader, out any, what string) error {
	resp, err := c.stream(ctx, http.MethodPut, path, q, r, http.Header{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// RestoreVolume sends the tar archive r to node, to be extracted into volume.
func (c *Client) RestoreVolume(ctx context.Context, node, volume, service string, index int32, r io.Reader) (nodeapi.RestoreResult, error) {
	q := url.Values{"service": {service}, "index": {strconv.Itoa(int(index))}}
	var out nodeapi.RestoreResult
	err := c.putArchive(ctx, nodeapi.ArchivePath(node, volume), q, r, &out, fmt.Sprintf("node %s: restore of volume %s", node, volume))
	return out, err
}
