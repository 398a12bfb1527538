// Watching the engine: the event stream and a container's log tail.

package docker

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Event is a container event from the daemon.
type Event struct {
	ContainerID string
	// Action is Docker's: create, start, die, stop, kill, destroy, health_status: healthy, ...
	Action string
	Labels map[string]string
	Time   time.Time
}

// LogTail returns the last n lines of a container's stdout and stderr written since since (the
// zero time: all), interleaved by line.
func (c *Client) LogTail(ctx context.Context, id string, since time.Time, n int) (string, error) {
	var out string
	err := c.call(ctx, "logs of container", short(id), c.t.Call, func(ctx context.Context) error {
		var err error
		out, err = c.logTail(ctx, id, since, n)
		return err
	})
	return out, err
}

func (c *Client) logTail(ctx context.Context, id string, since time.Time, n int) (string, error) {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)}
	if !since.IsZero() {
		opts.Since = since.Format(time.RFC3339Nano)
	}
	rc, err := c.api.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", wrap(err, "logs of container %s", short(id))
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 64<<10)); err != nil {
		return "", wrap(err, "logs of container %s", short(id))
	}
	var lines []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}

// Events streams container events for containers carrying all of labels until ctx ends or the
// stream fails; the error channel then receives one error (io.EOF when the daemon closed it).
func (c *Client) Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error) {
	f := client.Filters{}
	f.Add("type", string(events.ContainerEventType))
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	res := c.api.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-res.Messages:
				ev := Event{ContainerID: m.Actor.ID, Action: string(m.Action), Labels: m.Actor.Attributes, Time: time.Unix(0, m.TimeNano)}
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err := <-res.Err:
				if err == nil {
					err = io.EOF
				}
				errc <- wrap(err, "docker events")
				return
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	return out, errc
}
