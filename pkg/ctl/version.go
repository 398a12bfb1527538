package ctl

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Version is ctl's version, set at build time with
// -ldflags "-X github.com/constellation-sh/constellation/pkg/ctl.Version=v0.1.0".
var Version = "dev"

func versionString() string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" && rev != "" {
				rev += "-dirty"
			}
		}
	}
	if rev != "" {
		return fmt.Sprintf("%s (%s, %s)", Version, rev, runtime.Version())
	}
	return fmt.Sprintf("%s (%s)", Version, runtime.Version())
}

func (a *app) versionCommand() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print ctl's version and the agents' versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.env.Out, "ctl: %s\n", versionString())
			if clientOnly {
				return nil
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			l, err := c.List(ctx, v1.KindNode, "")
			if err != nil {
				return err
			}
			byVersion := map[string][]string{}
			for _, o := range l.Items {
				n := o.(*v1.Node)
				v := n.Status.AgentVersion
				if v == "" {
					v = "unknown"
				}
				byVersion[v] = append(byVersion[v], n.Metadata.Name)
			}
			vs := make([]string, 0, len(byVersion))
			for v := range byVersion {
				vs = append(vs, v)
			}
			sort.Strings(vs)
			if len(vs) == 0 {
				fmt.Fprintf(a.env.Out, "server: %s (no nodes registered)\n", c.Server())
			}
			for _, v := range vs {
				sort.Strings(byVersion[v])
				fmt.Fprintf(a.env.Out, "agents: %s on %s\n", v, strings.Join(byVersion[v], ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print ctl's version only; do not contact the server")
	return cmd
}
