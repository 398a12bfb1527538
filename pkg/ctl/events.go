package ctl

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// Events: `ctl get events [-w] [--for KIND/NAME]` and the Events section at the end of `ctl
// describe` (docs/events.md).

func init() { printers[v1.KindEvent] = printer{eventHeader, eventRow} }

func eventHeader(wide bool) []string {
	h := []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"}
	if wide {
		h = append(h, "NODE", "COMPONENT", "FIRST SEEN", "NAME")
	}
	return h
}

func eventRow(o v1.Object, wide bool, now time.Time) []string {
	e := o.(*v1.Event)
	obj := strings.ToLower(e.Spec.InvolvedObject.Kind) + "/" + e.Spec.InvolvedObject.Name
	r := []string{age(now, &e.Spec.LastSeen), string(e.Spec.Type), string(e.Spec.Reason), obj, fmt.Sprint(e.Spec.Count), oneLineMessage(e.Spec.Message)}
	if wide {
		r = append(r, none(e.Spec.Node), none(e.Spec.Component), age(now, &e.Spec.FirstSeen), e.Metadata.Name)
	}
	return r
}

// oneLineMessage keeps a table row on one line: log tails in messages carry newlines.
func oneLineMessage(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\t", " ")), " ")
}

// sortForTable orders Events the way kubectl lists them: least recently seen first, so the
// newest are at the bottom, next to the prompt. Other kinds keep the server's order (by name).
func sortForTable(kind string, objs []v1.Object) {
	if kind != v1.KindEvent {
		return
	}
	sort.SliceStable(objs, func(i, j int) bool {
		a, aok := objs[i].(*v1.Event)
		b, bok := objs[j].(*v1.Event)
		if !aok || !bok {
			return false
		}
		if !a.Spec.LastSeen.Equal(b.Spec.LastSeen) {
			return a.Spec.LastSeen.Before(b.Spec.LastSeen)
		}
		return a.Metadata.Name < b.Metadata.Name
	})
}

// eventsFor is the label selector of the Events about the object named by arg ("svc/web",
// "service/web", "lease/lb"), combined with sel (the -l the operator gave, may be "").
func eventsFor(arg, sel string) (string, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok || kind == "" || name == "" {
		return "", fmt.Errorf("--for: want KIND/NAME like svc/web, got %q", arg)
	}
	info, isRoutes, err := resolveKind(kind)
	if err != nil {
		return "", fmt.Errorf("--for: %w", err)
	}
	if isRoutes {
		return "", fmt.Errorf("--for: routes have no events")
	}
	if !v1.IsDNSLabel(name) {
		return "", fmt.Errorf("--for: %q is not an object name", name)
	}
	out := involvedSelector(info.Kind, name)
	if sel != "" {
		out += "," + sel
	}
	return out, nil
}

func involvedSelector(kind, name string) string {
	return v1.LabelEventKind + "=" + kind + "," + v1.LabelEventName + "=" + name
}

// maxDescribeEvents is how many Events describe shows, the most recent.
const maxDescribeEvents = 20

// describeEvents appends the object's Events to describe's output, as kubectl does. A server
// that cannot list them (an agent older than Events) gets a warning, not a failure: the rest of
// describe stands.
func (a *app) describeEvents(ctx context.Context, c *client.Client, obj v1.Object) error {
	kind, name := obj.GetTypeMeta().Kind, obj.GetMetadata().Name
	l, err := c.List(ctx, v1.KindEvent, involvedSelector(kind, name))
	if err != nil {
		fmt.Fprintf(a.env.Err, "warning: events of %s: %v\n", ref(obj), err)
		return nil
	}
	return writeDescribeEvents(a.env.Out, l.Items, a.env.Now())
}

// writeDescribeEvents writes the "Events:" section: type, reason, age (with the count and the
// age of the first occurrence when it happened more than once), who reported it, the message.
func writeDescribeEvents(w io.Writer, objs []v1.Object, now time.Time) error {
	sortForTable(v1.KindEvent, objs)
	if len(objs) > maxDescribeEvents {
		objs = objs[len(objs)-maxDescribeEvents:]
	}
	if len(objs) == 0 {
		_, err := io.WriteString(w, "Events:  <none>\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Events:")
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t----\t----\t-------")
	for _, o := range objs {
		e, ok := o.(*v1.Event)
		if !ok {
			continue
		}
		when := age(now, &e.Spec.LastSeen)
		if e.Spec.Count > 1 {
			when += fmt.Sprintf(" (x%d over %s)", e.Spec.Count, age(now, &e.Spec.FirstSeen))
		}
		from := none(e.Spec.Component)
		if e.Spec.Node != "" {
			from += " (" + e.Spec.Node + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Spec.Type, e.Spec.Reason, when, from, oneLineMessage(e.Spec.Message))
	}
	return tw.Flush()
}
