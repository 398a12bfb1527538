package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// deletePollInterval is how often delete --wait looks again. Container removal is observed
// through gossip, which has no watch, so this is a poll; a few requests a second to one agent.
const deletePollInterval = 250 * time.Millisecond

func (a *app) deleteCommand() *cobra.Command {
	var files []string
	var ignoreNotFound, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "delete KIND NAME [NAME...] | -f PATH",
		Short: "Delete objects by kind and name, or those defined in files, and wait until they are gone",
		Long: "Delete objects, then (as kubectl does) wait until they are gone: the object has left the store\n" +
			"(its finalizers have run) and, for a Service, no container of it is observed on any node.\n" +
			"--wait=false returns as soon as the deletion is accepted.",
		Example: "  ctl delete svc hello\n  ctl delete -f specs/hello\n  ctl delete svc hello --wait=false",
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
			var deleted []v1.Key
			for _, k := range keys {
				msg, err := deleteOne(ctx, c, k)
				if err != nil && ignoreNotFound && client.IsNotFound(err) {
					// Already deleted, but a Service's containers may still be draining
					// (a delete just before, an agent that was down): wait for those too.
					if k.Kind == v1.KindService {
						deleted = append(deleted, k)
					}
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
				deleted = append(deleted, k)
			}
			if wait && len(deleted) > 0 {
				wctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				if err := waitGone(wctx, c, deleted, a.env.Out, timeout); err != nil {
					return err
				}
			}
			if failed > 0 {
				return silentExit(1)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the objects defined in this file, directory or - (stdin); repeatable")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the objects are gone: finalizers done and, for a Service, no container left on any node")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}

func deleteOne(ctx context.Context, c *client.Client, k v1.Key) (string, error) {
	name := keyRef(k)
	o, err := c.Delete(ctx, k.Kind, k.Name)
	if err != nil {
		return "", err
	}
	if o != nil && o.GetMetadata().DeletionTimestamp != nil && len(o.GetMetadata().Finalizers) > 0 {
		return fmt.Sprintf("%s marked for deletion (waiting for finalizers: %s)", name, strings.Join(o.GetMetadata().Finalizers, ", ")), nil
	}
	return name + " deleted", nil
}

func keyRef(k v1.Key) string { return strings.ToLower(k.Kind) + "/" + k.Name }

// goneState is what delete --wait knows of one deleted object.
type goneState struct {
	key v1.Key
	// inStore: the object is still in the store (finalizers pending); finalizers lists them.
	inStore    bool
	finalizers []string
	// containers: a Service's replicas still observed, as "node/service-index state".
	containers []string
}

func (g goneState) gone() bool { return !g.inStore && len(g.containers) == 0 }

func (g goneState) String() string {
	switch {
	case g.inStore && len(g.finalizers) > 0:
		return fmt.Sprintf("%s: waiting for finalizers: %s", keyRef(g.key), strings.Join(g.finalizers, ", "))
	case g.inStore:
		return keyRef(g.key) + ": still in the store"
	case len(g.containers) > 0:
		return fmt.Sprintf("%s: %d container(s) left: %s", keyRef(g.key), len(g.containers), strings.Join(g.containers, ", "))
	}
	return keyRef(g.key) + " gone"
}

// waitGone polls until every key is gone: out of the store and, for a Service, no replica left
// in the agent's observed state (/debug/observed; the node removes containers after its drain
// delay, which is why deleting the object is not the end). A server without that endpoint is
// not an agent and has no containers: the store alone decides there. A progress line is printed
// whenever what an object waits for changes, and "KIND/NAME gone" once it is gone.
func waitGone(ctx context.Context, c *client.Client, keys []v1.Key, out io.Writer, timeout time.Duration) error {
	observed := true // the server reports observed state; false after a 404
	pending := append([]v1.Key(nil), keys...)
	last := map[v1.Key]string{} // the last progress line printed per key
	var lastErr error
	for {
		states, err := goneStates(ctx, c, pending, &observed)
		switch {
		case err != nil && ctx.Err() == nil && isFatal(err):
			return err
		case err != nil:
			// A transient answer (503 without quorum, an agent restarting): keep waiting.
			lastErr = err
		default:
			lastErr = nil
			pending = pending[:0]
			for _, s := range states {
				if s.gone() {
					if last[s.key] != "" {
						fmt.Fprintln(out, s.String())
					}
					continue
				}
				pending = append(pending, s.key)
				if line := s.String(); line != last[s.key] {
					fmt.Fprintln(out, line)
					last[s.key] = line
				}
			}
			if len(pending) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			var left []string
			for _, k := range pending {
				if l := last[k]; l != "" {
					left = append(left, l)
				} else {
					left = append(left, keyRef(k))
				}
			}
			if lastErr != nil && !errors.Is(lastErr, ctx.Err()) {
				left = append(left, "last error: "+lastErr.Error())
			}
			return fmt.Errorf("timed out after %s waiting for deletion (left: %s); --timeout waits longer, --wait=false does not wait",
				timeout, strings.Join(left, "; "))
		case <-time.After(deletePollInterval):
		}
	}
}

// goneStates reads the store and, when a deleted Service has left it, the observed replicas.
func goneStates(ctx context.Context, c *client.Client, keys []v1.Key, observed *bool) ([]goneState, error) {
	states := make([]goneState, 0, len(keys))
	needReplicas := false
	for _, k := range keys {
		s := goneState{key: k}
		o, err := c.Get(ctx, k.Kind, k.Name)
		switch {
		case client.IsNotFound(err):
			needReplicas = needReplicas || k.Kind == v1.KindService
		case err != nil:
			return nil, err
		default:
			s.inStore, s.finalizers = true, o.GetMetadata().Finalizers
		}
		states = append(states, s)
	}
	if !needReplicas || !*observed {
		return states, nil
	}
	reps, err := c.ObservedReplicas(ctx)
	if client.IsNotFound(err) {
		*observed = false
		return states, nil
	}
	if err != nil {
		return nil, err
	}
	for i, s := range states {
		if s.key.Kind != v1.KindService || s.inStore {
			continue
		}
		for _, r := range reps {
			if r.Service == s.key.Name {
				states[i].containers = append(states[i].containers, fmt.Sprintf("%s/%s-%d %s", r.Node, r.Service, r.Index, r.State))
			}
		}
		sort.Strings(states[i].containers)
	}
	return states, nil
}
