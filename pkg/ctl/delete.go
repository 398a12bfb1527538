package ctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

func (a *app) deleteCommand() *cobra.Command {
	var files []string
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:     "delete KIND NAME [NAME...] | -f PATH",
		Short:   "Delete objects by kind and name, or those defined in files",
		Example: "  ctl delete svc hello\n  ctl delete -f specs/hello",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var keys []v1.Key
			switch {
			case len(files) > 0 && len(args) > 0:
				return fmt.Errorf("delete takes KIND NAME or -f PATH, not both")
			case len(files) > 0:
				r := &reader{stdin: a.env.In, stderr: a.env.Err, goBin: a.env.GoBin}
				items, err := r.read(ctx, files)
				if err != nil {
					return err
				}
				for _, it := range items {
					keys = append(keys, v1.KeyOf(it.obj))
				}
			default:
				kind, name, rest := splitKindName(args)
				if name == "" {
					return fmt.Errorf("delete takes KIND NAME [NAME...] or -f PATH")
				}
				info, isRoutes, err := resolveKind(kind)
				if err != nil {
					return err
				}
				if isRoutes {
					return fmt.Errorf("routes cannot be deleted; delete or change the Service")
				}
				for _, n := range append([]string{name}, rest...) {
					keys = append(keys, v1.Key{Kind: info.Kind, Name: n})
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			failed := 0
			for _, k := range keys {
				msg, err := deleteOne(ctx, c, k)
				if err != nil && ignoreNotFound && client.IsNotFound(err) {
					continue
				}
				if err != nil {
					if isFatal(err) {
						return err
					}
					failed++
					fmt.Fprintln(a.env.Err, "error: "+oneLine(a.explain(err)))
					continue
				}
				fmt.Fprintln(a.env.Out, msg)
			}
			if failed > 0 {
				return silentExit(1)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the objects defined in this file, directory or - (stdin); repeatable")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	return cmd
}

func deleteOne(ctx context.Context, c *client.Client, k v1.Key) (string, error) {
	name := strings.ToLower(k.Kind) + "/" + k.Name
	o, err := c.Delete(ctx, k.Kind, k.Name)
	if err != nil {
		return "", err
	}
	if o != nil && o.GetMetadata().DeletionTimestamp != nil && len(o.GetMetadata().Finalizers) > 0 {
		return fmt.Sprintf("%s marked for deletion (waiting for finalizers: %s)", name, strings.Join(o.GetMetadata().Finalizers, ", ")), nil
	}
	return name + " deleted", nil
}
