package ctl

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// meshRoutes is `ctl routes --mesh`: every node's mesh as that node's agent serves it (its
// listeners, and each endpoint as that node sees it: health, local, open connections). A node
// whose agent cannot be reached is named, and the command then exits 1.
func (a *app) meshRoutes(ctx context.Context, output string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	views, unreachable, err := meshViews(ctx, c)
	if err != nil {
		return err
	}
	if output == "json" {
		if err := writeJSON(a.env.Out, views); err != nil {
			return err
		}
	} else {
		t := table{header: []string{"NODE", "LISTENER", "SERVICE", "ENDPOINTS"}}
		for _, v := range views {
			if !v.Enabled {
				t.rows = append(t.rows, []string{v.Node, "-", "-", "(no mesh data plane on this node)"})
				continue
			}
			for _, li := range v.Listeners {
				t.rows = append(t.rows, []string{v.Node, fmt.Sprintf("%s:%d/%s", li.VIP, li.Port, li.Protocol), li.Service, meshEndpoints(li.Endpoints)})
			}
		}
		if len(t.rows) == 0 {
			fmt.Fprintln(a.env.Err, "No mesh listeners.")
		} else if err := t.write(a.env.Out, false); err != nil {
			return err
		}
	}
	if len(unreachable) > 0 {
		return errors.New("mesh of these nodes not shown: " + strings.Join(unreachable, "; "))
	}
	return nil
}

// meshViews asks every node's agent for its mesh, in node name order; a node that cannot be
// asked is returned in unreachable with why.
func meshViews(ctx context.Context, c *client.Client) (views []*client.MeshView, unreachable []string, err error) {
	l, err := c.List(ctx, v1.KindNode, "")
	if err != nil {
		return nil, nil, err
	}
	nodes := make([]*v1.Node, 0, len(l.Items))
	for _, o := range l.Items {
		nodes = append(nodes, o.(*v1.Node))
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Metadata.Name < nodes[j].Metadata.Name })
	for _, n := range nodes {
		addr := n.Status.Addresses.API
		if addr == "" {
			unreachable = append(unreachable, n.Metadata.Name+" (no API address recorded)")
			continue
		}
		nc, err := c.ForServer(addr)
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s (%s: %v)", n.Metadata.Name, addr, err))
			continue
		}
		v, err := nc.Mesh(ctx)
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s (%s: %v)", n.Metadata.Name, addr, err))
			continue
		}
		views = append(views, v)
	}
	return views, unreachable, nil
}

// meshEndpoints prints endpoints as "n1 10.0.0.1:31000 (local, 2 open), n2 10.0.0.2:31000 (unhealthy)".
func meshEndpoints(eps []client.MeshEndpoint) string {
	if len(eps) == 0 {
		return "<none>"
	}
	parts := make([]string, 0, len(eps))
	for _, e := range eps {
		var notes []string
		if e.Local {
			notes = append(notes, "local")
		}
		if !e.Healthy {
			notes = append(notes, "unhealthy")
		}
		if e.Breaker != "" && e.Breaker != "closed" {
			notes = append(notes, "breaker "+e.Breaker)
		}
		if e.Active > 0 {
			notes = append(notes, fmt.Sprintf("%d open", e.Active))
		}
		s := e.Node + " " + e.Address
		if len(notes) > 0 {
			s += " (" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
