package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/constellation-sh/constellation/pkg/client"
)

// nodeGroupCommand is `ctl node`: verbs about cluster membership rather than one Node's spec.
func (a *app) nodeGroupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Manage cluster membership",
	}
	cmd.AddCommand(a.nodeRemoveCommand())
	return cmd
}

func (a *app) nodeRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "Remove a node that is gone for good: its raft membership and its Node object",
		Long: "Remove a node that is gone for good (a dead machine, a lost disk): the agent takes it out of\n" +
			"the replicated store's members and deletes its Node object, so that a replacement can join\n" +
			"under the same name with a fresh data dir.\n\n" +
			"It is refused, with the reason, when it would break quorum (too few voters alive before or\n" +
			"after), for the last voter, for the node answering the request, and for a node that is still\n" +
			"alive unless --force is given. --force never overrides the quorum checks.",
		Example: "  ctl node remove n3\n  ctl node remove n3 --force   # a live node you are decommissioning",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.RemoveNode(cmd.Context(), args[0], client.RemoveNodeOptions{Force: force})
			if err != nil {
				return err
			}
			switch {
			case res.RemovedMember && res.DeletedNode:
				fmt.Fprintf(a.env.Out, "node/%s removed: raft member and Node object\n", args[0])
			case res.RemovedMember:
				fmt.Fprintf(a.env.Out, "node/%s removed: raft member (it had no Node object)\n", args[0])
			default:
				fmt.Fprintf(a.env.Out, "node/%s removed: Node object (it was not a raft member)\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove a node that is still alive (quorum is still checked)")
	return cmd
}
