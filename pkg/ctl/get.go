package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

type getOptions struct {
	output   string
	watch    bool
	selector string
	reveal   bool
	forObj   string // get events --for KIND/NAME (events.go)
}

func (a *app) getCommand() *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List objects of a kind, or show one",
		Long: "get prints objects as a table (-o table, the default), a wider table (-o wide) or JSON (-o json).\n" +
			"KIND is plural, singular or short (svc, dns, rs, no), or routes (what Traefik is told).",
		Example: "  ctl get services -o wide\n  ctl get svc hello -o json\n  ctl get nodes\n  ctl get svc -l tier=web -w\n  ctl get routes\n  ctl get events --for svc/hello -w",
		Args:    kindArgs("get", 1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, rest := splitKindName(args)
			if len(rest) > 0 {
				return fmt.Errorf("get takes KIND [NAME], got %q", strings.Join(args, " "))
			}
			return a.get(cmd.Context(), kind, name, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "table", "output format: table, wide or json")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, print rows as objects change")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector (app=web,tier!=db,env in (a,b),has-key,!no-key)")
	f.StringVar(&o.forObj, "for", "", "with `get events`: only the events of this object (KIND/NAME, e.g. svc/web)")
	f.BoolVar(&o.reveal, "reveal", false, "with `get secret NAME -o json`: print the Secret's values (admin token only; audited)")
	return cmd
}

func (a *app) routesCommand() *cobra.Command {
	var output string
	var mesh bool
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Show the routes the cluster gives Traefik (alias of get routes), or with --mesh every node's mesh",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("unknown output format %q (want table or json)", output)
			}
			if mesh {
				return a.meshRoutes(cmd.Context(), output)
			}
			return a.get(cmd.Context(), routesKind, "", getOptions{output: output})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&mesh, "mesh", false, "show every node's mesh: virtual IP listeners and their endpoints as that node sees them")
	return cmd
}

func (a *app) get(ctx context.Context, kindArg, name string, o getOptions) error {
	switch o.output {
	case "table", "wide", "json":
	default:
		return fmt.Errorf("unknown output format %q (want table, wide or json)", o.output)
	}
	info, isRoutes, err := resolveKind(kindArg)
	if err != nil {
		return err
	}
	if o.forObj != "" {
		if info.Kind != v1.KindEvent || isRoutes {
			return fmt.Errorf("--for: only with `get events`")
		}
		if o.selector, err = eventsFor(o.forObj, o.selector); err != nil {
			return err
		}
	}
	if o.selector != "" {
		if _, err := v1.ParseSelector(o.selector); err != nil {
			return err
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if isRoutes {
		if name != "" || o.watch || o.selector != "" {
			return fmt.Errorf("routes takes no name, --watch or --selector")
		}
		rs, err := c.Routes(ctx)
		if err != nil {
			return err
		}
		if o.output == "json" {
			return writeJSON(a.env.Out, rs.Items)
		}
		if len(rs.Items) == 0 {
			fmt.Fprintln(a.env.Err, "No routes.")
		} else if err := routesTable(rs.Items).write(a.env.Out, false); err != nil {
			return err
		}
		for _, p := range rs.Problems {
			fmt.Fprintln(a.env.Err, "warning: route left out: "+p.String())
		}
		return nil
	}
	if o.reveal {
		if info.Kind != v1.KindSecret || name == "" || o.output != "json" || o.watch {
			return fmt.Errorf("--reveal: only with `get secret NAME -o json`")
		}
		sec, err := c.RevealSecret(ctx, name)
		if err != nil {
			return err
		}
		return writeJSON(a.env.Out, sec)
	}
	wide := o.output == "wide"
	var objs []v1.Object
	var rv string
	if name != "" {
		obj, err := c.Get(ctx, info.Kind, name)
		if err != nil {
			return err
		}
		objs, rv = []v1.Object{obj}, obj.GetMetadata().ResourceVersion
		if o.output == "json" {
			if err := writeJSON(a.env.Out, redact(obj)); err != nil {
				return err
			}
		}
	} else {
		l, err := c.List(ctx, info.Kind, o.selector)
		if err != nil {
			return err
		}
		objs, rv = l.Items, l.ResourceVersion
		if o.output == "json" {
			if err := writeJSON(a.env.Out, listJSON(info.Kind, l)); err != nil {
				return err
			}
		}
	}
	var t table
	if o.output != "json" {
		sortForTable(info.Kind, objs)
		t = objectTable(info.Kind, objs, wide, a.env.Now())
		if len(objs) == 0 && !o.watch {
			fmt.Fprintln(a.env.Err, "No resources found.")
			return nil
		}
		if len(objs) > 0 || !o.watch {
			if err := t.write(a.env.Out, false); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(a.env.Out, padRow(t.header, t.widths()))
		}
		if info.Kind == v1.KindNode && name == "" {
			fmt.Fprintln(a.env.Err, quorumNote(objs))
		}
	}
	if !o.watch {
		return nil
	}
	return a.watch(ctx, c, info, name, rv, o, t)
}

// watch prints a row (or, with -o json, an event line) for every change after rv. When the
// server ends the stream (it closes watches after a while), it watches again from the last
// revision seen, so nothing is missed or printed twice.
func (a *app) watch(ctx context.Context, c *client.Client, info v1.KindInfo, name, rv string, o getOptions, t table) error {
	widths := t.widths()
	for {
		wctx, cancel := context.WithCancel(ctx)
		next, err := a.watchOnce(wctx, c, info, name, rv, o, widths)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of a watch
		}
		if err != nil {
			return err
		}
		rv = next
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchOnce follows one watch stream until it ends and returns the revision to resume from.
// A revision compacted away (410) is answered by listing again.
func (a *app) watchOnce(ctx context.Context, c *client.Client, info v1.KindInfo, name, rv string, o getOptions, widths []int) (string, error) {
	events, err := c.Watch(ctx, info.Kind, client.WatchOptions{ResourceVersion: rv, Selector: o.selector})
	if client.IsGone(err) {
		return a.relist(ctx, c, info, name, o, widths)
	}
	if err != nil {
		return rv, err
	}
	p := printers[info.Kind]
	for ev := range events {
		if ev.Type == client.ErrorEvent {
			if client.IsGone(ev.Err) {
				return a.relist(ctx, c, info, name, o, widths)
			}
			return rv, fmt.Errorf("watch %s: %w", info.Plural, ev.Err)
		}
		obj := ev.Object
		if r := obj.GetMetadata().ResourceVersion; r != "" {
			rv = r
		}
		if name != "" && obj.GetMetadata().Name != name {
			continue
		}
		if o.output == "json" {
			if err := writeJSONLine(a.env.Out, map[string]any{"type": ev.Type, "object": redact(obj)}); err != nil {
				return rv, err
			}
			continue
		}
		if ev.Type == client.Deleted {
			fmt.Fprintf(a.env.Out, "%s deleted\n", ref(obj))
			continue
		}
		fmt.Fprintln(a.env.Out, padRow(p.row(obj, o.output == "wide", a.env.Now()), widths))
	}
	return rv, nil
}

// relist prints the objects as they are now (the revision we stopped at was compacted while
// reconnecting) and returns the list's revision. Deletions in the gap are not shown.
func (a *app) relist(ctx context.Context, c *client.Client, info v1.KindInfo, name string, o getOptions, widths []int) (string, error) {
	l, err := c.List(ctx, info.Kind, o.selector)
	if err != nil {
		return "", err
	}
	p := printers[info.Kind]
	for _, obj := range l.Items {
		if name != "" && obj.GetMetadata().Name != name {
			continue
		}
		if o.output == "json" {
			if err := writeJSONLine(a.env.Out, map[string]any{"type": client.Modified, "object": redact(obj)}); err != nil {
				return "", err
			}
			continue
		}
		fmt.Fprintln(a.env.Out, padRow(p.row(obj, o.output == "wide", a.env.Now()), widths))
	}
	return l.ResourceVersion, nil
}

// redact never lets a Secret value out, even if a server sent one.
func redact(o v1.Object) v1.Object {
	if s, ok := o.(*v1.Secret); ok {
		return s.Redact()
	}
	return o
}

type listOut struct {
	v1.TypeMeta `json:",inline"`
	Metadata    v1.ListMeta `json:"metadata"`
	Items       []v1.Object `json:"items"`
}

func listJSON(kind string, l *client.ListResult) listOut {
	items := make([]v1.Object, len(l.Items))
	for i, o := range l.Items {
		items[i] = redact(o)
	}
	return listOut{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: kind + "List"}, Metadata: v1.ListMeta{ResourceVersion: l.ResourceVersion}, Items: items}
}

// writeJSON writes v indented, without escaping <, > and & (rules and redactions read better).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
