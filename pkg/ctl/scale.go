package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func (a *app) scaleCommand() *cobra.Command {
	var replicas int32
	cmd := &cobra.Command{
		Use:   "scale svc/NAME --replicas N",
		Short: "Set a Service's spec.replicas",
		Long: "scale writes spec.replicas with a compare-and-swap PUT (read again and retried on a\n" +
			"conflict), changing nothing else. Services only; a global Service (spec.mode global)\n" +
			"runs one replica per eligible node and cannot be scaled. 0 stops every replica.",
		Example: "  ctl scale svc/web --replicas 3\n  ctl scale web --replicas 0",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := serviceArg("scale", args)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("replicas") {
				return fmt.Errorf("scale services/%s: --replicas N is required", name)
			}
			if replicas < 0 {
				return fmt.Errorf("scale services/%s: --replicas must be 0 or more, got %d", name, replicas)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var before int32
			_, err = updateService(cmd.Context(), c, name, func(s *v1.Service) error {
				switch {
				case s.Spec.IsGlobal():
					return fmt.Errorf("services/%s: spec.mode is global (one replica per eligible node): it cannot be scaled; change spec.placement.nodeSelector instead", name)
				case s.Spec.IsUpstreamService():
					return fmt.Errorf("services/%s: spec.upstreams: an upstream Service runs no replicas to scale", name)
				}
				before = s.Spec.DesiredReplicas()
				n := replicas
				s.Spec.Replicas = &n
				return nil
			})
			if err != nil {
				return err
			}
			if before == replicas {
				fmt.Fprintf(a.env.Out, "service/%s unchanged (%d replicas)\n", name, replicas)
				return nil
			}
			fmt.Fprintf(a.env.Out, "service/%s scaled from %d to %d replicas\n", name, before, replicas)
			return nil
		},
	}
	cmd.Flags().Int32Var(&replicas, "replicas", 0, "the number of replicas (0 or more); required")
	return cmd
}
