package ctl

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// maxCASAttempts bounds the read-modify-write loop on a Node that agents update too.
const maxCASAttempts = 10

// updateNode reads the node, lets mutate change a copy, and writes it back with
// compare-and-swap, retrying on conflict. It reports whether anything had to change.
func updateNode(ctx context.Context, c *client.Client, name string, mutate func(*v1.Node) bool) (bool, error) {
	for attempt := range maxCASAttempts {
		if attempt > 0 {
			// Agents rewrite their Node's status every few seconds; back off a little, with
			// jitter, so that a busy node does not win every race.
			d := time.Duration(attempt) * 20 * time.Millisecond
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(d + rand.N(d)):
			}
		}
		o, err := c.Get(ctx, v1.KindNode, name)
		if err != nil {
			return false, err
		}
		n := o.(*v1.Node)
		if !mutate(n) {
			return false, nil
		}
		// n carries the resourceVersion just read: the write is compare-and-swap.
		if _, err := c.Put(ctx, n, client.PutOptions{}); err != nil {
			if client.IsConflict(err) {
				continue
			}
			return false, err
		}
		return true, nil
	}
	return false, fmt.Errorf("nodes/%s: still conflicting after %d attempts; try again", name, maxCASAttempts)
}

func (a *app) nodeCommand(use, short, done, already string, mutate func(*v1.Node) bool) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NODE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			changed, err := updateNode(cmd.Context(), c, args[0], mutate)
			if err != nil {
				return err
			}
			if changed {
				fmt.Fprintf(a.env.Out, "node/%s %s\n", args[0], done)
			} else {
				fmt.Fprintf(a.env.Out, "node/%s %s\n", args[0], already)
			}
			return nil
		},
	}
}

func (a *app) cordonCommand() *cobra.Command {
	return a.nodeCommand("cordon", "Mark a node unschedulable: no new replicas are placed on it", "cordoned", "already cordoned",
		func(n *v1.Node) bool {
			if n.Spec.Unschedulable {
				return false
			}
			n.Spec.Unschedulable = true
			return true
		})
}

func (a *app) uncordonCommand() *cobra.Command {
	return a.nodeCommand("uncordon", "Mark a node schedulable again (also ends a drain)", "uncordoned", "already uncordoned",
		func(n *v1.Node) bool {
			if !n.Spec.Unschedulable && !n.Spec.Drain {
				return false
			}
			n.Spec.Unschedulable, n.Spec.Drain = false, false
			return true
		})
}

func (a *app) drainCommand() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := a.nodeCommand("drain", "Cordon a node and move its replicas to other nodes", "draining: its replicas are moving to other nodes", "already draining",
		func(n *v1.Node) bool {
			if n.Spec.Unschedulable && n.Spec.Drain {
				return false
			}
			n.Spec.Unschedulable, n.Spec.Drain = true, true
			return true
		})
	cmd.Example = "  ctl drain n2 --wait --timeout 10m\n  ctl uncordon n2"
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := run(cmd, args); err != nil || !wait {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		return waitDrained(ctx, c, args[0], a.env.Out, drainPoll)
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until no replica is placed on or running on the node")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

// drainPoll is how often drain --wait looks at the Services.
var drainPoll = time.Second

// replicasOn lists "service/index" for every replica assigned to or observed on node.
func replicasOn(services []v1.Object, node string) []string {
	var out []string
	for _, o := range services {
		s := o.(*v1.Service)
		seen := map[int32]bool{}
		for _, a := range s.Status.Assignments {
			if a.Node == node && !seen[a.Index] {
				seen[a.Index] = true
				out = append(out, fmt.Sprintf("%s/%d", s.Metadata.Name, a.Index))
			}
		}
		for _, r := range s.Status.ReplicaStatuses {
			if r.Node == node && !seen[r.Index] {
				seen[r.Index] = true
				out = append(out, fmt.Sprintf("%s/%d", s.Metadata.Name, r.Index))
			}
		}
	}
	sort.Strings(out)
	return out
}

func waitDrained(ctx context.Context, c *client.Client, node string, out io.Writer, every time.Duration) error {
	last := ""
	for {
		l, err := c.List(ctx, v1.KindService, "")
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("timed out waiting for node/%s to drain (left: %s)", node, none(last))
			}
			return err
		}
		left := replicasOn(l.Items, node)
		if len(left) == 0 {
			fmt.Fprintf(out, "node/%s has no replicas left\n", node)
			return nil
		}
		if cur := strings.Join(left, ", "); cur != last {
			fmt.Fprintf(out, "%s: %d replicas left (%s)\n", node, len(left), cur)
			last = cur
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for node/%s to drain (left: %s)", node, last)
		case <-time.After(every):
		}
	}
}
