package ctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/constellation-sh/constellation/pkg/client"
)

// secretGroupCommand is `ctl secret`: verbs about Secrets as a whole rather than one Secret.
func (a *app) secretGroupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage how Secrets are kept",
	}
	cmd.AddCommand(a.secretRotateKeyCommand())
	return cmd
}

func (a *app) secretRotateKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Rotate the data key Secrets are sealed with at rest",
		Long: "Rotate the cluster data key that seals Secret values at rest: a new key becomes active,\n" +
			"every Secret is sealed again with it (compare-and-swap writes), and the old key is dropped\n" +
			"from the keyring once no Secret uses it. Values do not change; Services are not restarted.\n\n" +
			"Interrupted (ctl stopped, the agent restarted), it leaves every Secret readable: run it\n" +
			"again and it finishes that rotation instead of starting another.",
		Example: "  ctl secret rotate-key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.RotateDataKey(cmd.Context(), func(p client.DataKeyProgress) {
				fmt.Fprintf(a.env.Out, "re-sealed %d of %d Secrets\n", p.Done, p.Total)
			})
			if err != nil {
				return err
			}
			verb := "data key rotated"
			if res.Resumed {
				verb = "interrupted data key rotation finished"
			}
			dropped := "no old key to drop"
			if len(res.Dropped) > 0 {
				dropped = "dropped " + strings.Join(res.Dropped, ", ")
			}
			fmt.Fprintf(a.env.Out, "%s: %d Secrets sealed with %s (%d re-sealed now); %s\n",
				verb, res.Secrets, res.ActiveKeyID, res.Resealed, dropped)
			return nil
		},
	}
}
