package ctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/constellation-sh/constellation/pkg/client"
)

// clusterGroupCommand is `ctl cluster`: verbs about the cluster as a whole.
func (a *app) clusterGroupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Manage the cluster as a whole",
	}
	cmd.AddCommand(a.rotateGossipKeyCommand())
	return cmd
}

func (a *app) rotateGossipKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-gossip-key",
		Short: "Replace the key that encrypts gossip, on every member",
		Long: "Replace the gossip encryption key without downtime: the agent answering generates a new key,\n" +
			"installs it on every member alive in gossip, makes it primary everywhere once all have it,\n" +
			"then removes the old keys everywhere. Keys never leave the agents; ctl prints fingerprints.\n\n" +
			"A live member that cannot be reached stops the rotation before anything is switched, naming\n" +
			"the node. Nodes that are down are skipped and listed: when they return they fetch the new\n" +
			"keyring from a member (with the cluster secret) and rejoin gossip by themselves. Running the\n" +
			"command again after an interrupted rotation finishes it.",
		Example: "  ctl cluster rotate-gossip-key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			out := a.env.Out
			_, err = c.RotateGossipKey(cmd.Context(), func(ev client.GossipKeyRotationEvent) {
				switch ev.Step {
				case "plan":
					fmt.Fprintf(out, "rotating the gossip key on %d members (%s): new key %s\n", ev.Total, strings.Join(ev.Members, ", "), ev.Primary)
				case "skip":
					fmt.Fprintf(out, "skipped node/%s: %s\n", ev.Node, ev.Message)
				case "install":
					fmt.Fprintf(out, "installed on node/%s (%d of %d)\n", ev.Node, ev.Done, ev.Total)
				case "use":
					fmt.Fprintf(out, "primary on node/%s (%d of %d)\n", ev.Node, ev.Done, ev.Total)
				case "remove":
					fmt.Fprintf(out, "old keys removed on node/%s (%d of %d)\n", ev.Node, ev.Done, ev.Total)
				case "done":
					fmt.Fprintf(out, "gossip key rotated: primary %s on %d members\n", ev.Primary, ev.Total)
				}
			})
			return err
		},
	}
}
