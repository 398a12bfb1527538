package ctl

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// replicaRef is SERVICE or SERVICE/INDEX (also svc/SERVICE[/INDEX]); index -1 is every replica.
type replicaRef struct {
	service string
	index   int32
}

func parseReplicaRef(s string) (replicaRef, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 1 {
		if info, ok := v1.LookupKind(parts[0]); ok && info.Kind == v1.KindService {
			parts = parts[1:]
		}
	}
	ref := replicaRef{index: -1}
	switch len(parts) {
	case 1:
		ref.service = parts[0]
	case 2:
		ref.service = parts[0]
		n, err := strconv.ParseInt(parts[1], 10, 32)
		if err != nil || n < 0 {
			return ref, fmt.Errorf("%q: the replica index must be a number >= 0 (SERVICE/INDEX)", s)
		}
		ref.index = int32(n)
	default:
		return ref, fmt.Errorf("%q: want SERVICE or SERVICE/INDEX", s)
	}
	if ref.service == "" {
		return ref, fmt.Errorf("%q: no service name", s)
	}
	return ref, nil
}

// logTarget is one container of a replica on a node.
type logTarget struct {
	index     int32
	node      string
	container string
}

func (t logTarget) key() string { return fmt.Sprintf("%d/%s/%s", t.index, t.node, t.container) }

// logTargets are the replicas of svc to read (index -1: all), from its status: every replica
// a node reports, else the scheduler's assignment (a container not reported yet).
func logTargets(svc *v1.Service, index int32) []logTarget {
	var out []logTarget
	seen := map[int32]bool{}
	for _, rs := range svc.Status.ReplicaStatuses {
		if (index >= 0 && rs.Index != index) || rs.Node == "" {
			continue
		}
		out = append(out, logTarget{index: rs.Index, node: rs.Node, container: rs.ContainerID})
		seen[rs.Index] = true
	}
	for _, as := range svc.Status.Assignments {
		if (index >= 0 && as.Index != index) || seen[as.Index] || as.Node == "" {
			continue
		}
		out = append(out, logTarget{index: as.Index, node: as.Node})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// logLine is one line of the merged output.
type logLine struct {
	time    time.Time
	seq     uint64 // arrival order, to keep a replica's own lines in order on equal times
	arrived time.Time
	prefix  string
	color   int
	stream  string
	text    string
}

// logHeap orders lines by time, then arrival.
type logHeap []logLine

func (h logHeap) Len() int { return len(h) }
func (h logHeap) Less(i, j int) bool {
	if !h[i].time.Equal(h[j].time) {
		return h[i].time.Before(h[j].time)
	}
	return h[i].seq < h[j].seq
}
func (h logHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *logHeap) Push(x any)   { *h = append(*h, x.(logLine)) }
func (h *logHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// logMerger merges the lines of several streams by time. A line is held for window after it
// arrived, so that a line of another replica written earlier but delivered a moment later is
// still printed before it; flushing at the end prints all.
type logMerger struct {
	window time.Duration
	h      logHeap
	seq    uint64
}

func (m *logMerger) add(l logLine) {
	m.seq++
	l.seq = m.seq
	heap.Push(&m.h, l)
}

// ready pops the lines due at now (all with flush), oldest first.
func (m *logMerger) ready(now time.Time, flush bool) []logLine {
	var out []logLine
	for m.h.Len() > 0 && (flush || !m.h[0].arrived.Add(m.window).After(now)) {
		out = append(out, heap.Pop(&m.h).(logLine))
	}
	return out
}

// replicaColors are ANSI colours for the replicas' prefixes (cycled).
var replicaColors = []int{36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// parseSince reads --since: a duration back from now ("10m") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration (10m, 1h30m) or an RFC 3339 time", s)
	}
	return t, nil
}

func (a *app) logsCommand() *cobra.Command {
	var (
		follow, timestamps bool
		since, colorMode   string
		tail               int
		window             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "logs SERVICE[/INDEX]",
		Short: "Print the logs of a Service's replicas, merged by time",
		Long: "Print stdout and stderr of every replica of SERVICE (or of replica INDEX), read by the agent of\n" +
			"the node that runs it, merged by time, each line prefixed with the replica and its node.\n" +
			"With -f, follow the logs, and the replicas that start or move while it runs. A node that\n" +
			"cannot be reached is named on stderr and makes the exit status non-zero. Needs the read scope.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseReplicaRef(args[0])
			if err != nil {
				return err
			}
			sinceT, err := parseSince(since, a.env.Now())
			if err != nil {
				return err
			}
			color := colorMode == "always" || (colorMode == "auto" && isTerminal(a.env.Out))
			if colorMode != "auto" && colorMode != "always" && colorMode != "never" {
				return fmt.Errorf("--color %q: want auto, always or never", colorMode)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return runLogs(cmd.Context(), c, a.env.Out, a.env.Err, ref, logsOptions{
				follow: follow, since: sinceT, tail: tail, timestamps: timestamps, color: color, window: window,
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep streaming new lines, and replicas that start or move")
	f.StringVar(&since, "since", "", "only lines newer than a duration (10m) or an RFC 3339 time")
	f.IntVar(&tail, "tail", -1, "only the last N lines of each replica (-1: all)")
	f.BoolVar(&timestamps, "timestamps", false, "print each line's time")
	f.StringVar(&colorMode, "color", "auto", "colour the prefixes: auto (on a terminal), always, never")
	f.DurationVar(&window, "merge-window", 300*time.Millisecond, "with -f, how long a line waits for earlier lines of other replicas")
	_ = f.MarkHidden("merge-window")
	return cmd
}

type logsOptions struct {
	follow     bool
	since      time.Time
	tail       int
	timestamps bool
	color      bool
	window     time.Duration
}

// followReplicas starts a stream for each container of ref's replicas the watch reports, until
// the watch ends.
func followReplicas(ctx context.Context, events <-chan client.Event, errw io.Writer, ref replicaRef, start func(logTarget)) {
	for ev := range events {
		if ev.Type == client.ErrorEvent {
			fmt.Fprintln(errw, "error: watch of services/"+ref.service+": "+ev.Err.Error())
			continue
		}
		s, ok := ev.Object.(*v1.Service)
		if !ok || s.Metadata.Name != ref.service || ev.Type == client.Deleted {
			continue
		}
		for _, t := range logTargets(s, ref.index) {
			if t.container != "" { // else wait for the node to report its container
				start(t)
			}
		}
	}
}

// runLogs streams the logs of ref's replicas to out.
func runLogs(ctx context.Context, c *client.Client, out, errw io.Writer, ref replicaRef, o logsOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obj, err := c.Get(ctx, v1.KindService, ref.service)
	if err != nil {
		return err
	}
	svc := obj.(*v1.Service)
	targets := logTargets(svc, ref.index)
	if len(targets) == 0 && !o.follow {
		if ref.index >= 0 {
			return fmt.Errorf("services/%s replica %d is not placed on any node", ref.service, ref.index)
		}
		return fmt.Errorf("services/%s has no replica placed on a node", ref.service)
	}

	lines := make(chan logLine, 256)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string // guarded by mu
		started  = map[string]bool{}
		colors   = map[int32]int{}
	)
	start := func(t logTarget, since time.Time, tail int) {
		if started[t.key()] {
			return
		}
		started[t.key()] = true
		if _, ok := colors[t.index]; !ok {
			colors[t.index] = replicaColors[int(t.index)%len(replicaColors)]
		}
		prefix := fmt.Sprintf("%s-%d %s", ref.service, t.index, t.node)
		color := colors[t.index]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Logs(ctx, t.node, client.LogOptions{Service: ref.service, Index: t.index, Container: t.container,
				Follow: o.follow, Since: since, Tail: tail}, func(e nodeapi.LogEntry) error {
				select {
				case lines <- logLine{time: e.Time, arrived: time.Now(), prefix: prefix, color: color, stream: e.Stream, text: e.Line}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if err != nil && ctx.Err() == nil {
				msg := fmt.Sprintf("%s-%d on node %s: %v", ref.service, t.index, t.node, err)
				mu.Lock()
				failures = append(failures, msg)
				mu.Unlock()
				fmt.Fprintln(errw, "error: "+msg)
			}
		}()
	}
	for _, t := range targets {
		start(t, o.since, o.tail)
	}
	if o.follow {
		// Replicas that start or move: a new container is read from its first line.
		events, err := c.Watch(ctx, v1.KindService, client.WatchOptions{})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if events != nil {
					followReplicas(ctx, events, errw, ref, func(t logTarget) { start(t, o.since, -1) })
				}
				// The server ends watches (after 30 minutes): watch again; a fresh watch
				// lists the Service again and start skips the containers already read.
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				ev, werr := c.Watch(ctx, v1.KindService, client.WatchOptions{})
				if werr != nil && ctx.Err() == nil {
					fmt.Fprintln(errw, "error: watch of services/"+ref.service+": "+werr.Error())
				}
				events = ev
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	m := &logMerger{window: o.window}
	if !o.follow {
		m.window = 0
	}
	print := func(ls []logLine) {
		for _, l := range ls {
			var b strings.Builder
			if o.color {
				fmt.Fprintf(&b, "\x1b[%dm[%s]\x1b[0m ", l.color, l.prefix)
			} else {
				fmt.Fprintf(&b, "[%s] ", l.prefix)
			}
			if o.timestamps {
				b.WriteString(l.time.UTC().Format(time.RFC3339Nano))
				b.WriteByte(' ')
			}
			b.WriteString(l.text)
			b.WriteByte('\n')
			_, _ = io.WriteString(out, b.String())
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case l := <-lines:
			m.add(l)
			if o.follow {
				print(m.ready(time.Now(), false))
			}
		case <-tick.C:
			if o.follow {
				print(m.ready(time.Now(), false))
			}
		case <-done:
		drain:
			for {
				select {
				case l := <-lines:
					m.add(l)
				default:
					break drain
				}
			}
			print(m.ready(time.Now(), true))
			mu.Lock()
			defer mu.Unlock()
			if len(failures) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("logs incomplete: %s", strings.Join(failures, "; "))}
			}
			return nil
		case <-ctx.Done():
			print(m.ready(time.Now(), true))
			return nil
		}
	}
}
