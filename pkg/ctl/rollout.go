package ctl

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Manage a Service's rollout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("rollout needs a subcommand: undo SERVICE")
		},
	}
	undo := &cobra.Command{
		Use:     "undo SERVICE",
		Short:   "Roll a Service back to its previous spec",
		Example: "  ctl rollout undo hello",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.Undo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Out, "service/%s rolled back (image %s, generation %d)\n", s.Metadata.Name, s.Spec.Image, s.Metadata.Generation)
			return nil
		},
	}
	cmd.AddCommand(undo)
	return cmd
}
