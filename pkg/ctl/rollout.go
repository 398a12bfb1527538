package ctl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

func (a *app) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Manage a Service's rollout: status, history, restart, undo",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("rollout needs a subcommand: status, history, restart or undo SERVICE")
		},
	}
	cmd.AddCommand(a.rolloutStatusCommand(), a.rolloutHistoryCommand(), a.rolloutRestartCommand(), a.rolloutUndoCommand())
	return cmd
}

func (a *app) rolloutUndoCommand() *cobra.Command {
	var toRevision int64
	cmd := &cobra.Command{
		Use:   "undo svc/NAME [--to-revision N]",
		Short: "Roll a Service back to its previous spec, or to revision N of `rollout history`",
		Long: "undo returns the container-defining spec (image, command, env, ports, health check,\n" +
			"volumes, ...) to the previous revision, or to --to-revision N; replicas, routes,\n" +
			"placement and the update strategy stay as they are. The scheduler rolls it out like\n" +
			"any update, and the revision comes back as the newest one.",
		Example: "  ctl rollout undo hello\n  ctl rollout undo svc/hello --to-revision 2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := serviceArg("rollout undo", args)
			if err != nil {
				return err
			}
			if toRevision < 0 {
				return fmt.Errorf("services/%s: --to-revision must be a revision number (1 or more; 0: the previous one), got %d", name, toRevision)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.UndoTo(cmd.Context(), name, toRevision)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Out, "service/%s rolled back (image %s, generation %d)\n", s.Metadata.Name, s.Spec.Image, s.Metadata.Generation)
			return nil
		},
	}
	cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "revision to return to (see `ctl rollout history`); 0: the previous one")
	return cmd
}

func (a *app) rolloutRestartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restart svc/NAME",
		Short: "Replace every replica of a Service, rolling as spec.update says",
		Long: "restart sets spec.restartedAt to now: it is part of the spec hash, so every replica is\n" +
			"replaced, rolling as spec.update says (health checks gate each step). A later apply of a\n" +
			"file without restartedAt keeps the stored value: it does not restart again.",
		Example: "  ctl rollout restart svc/hello\n  ctl rollout restart hello && ctl rollout status hello",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := serviceArg("rollout restart", args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			_, err = updateService(cmd.Context(), c, name, func(s *v1.Service) error {
				if s.Spec.IsUpstreamService() {
					return fmt.Errorf("services/%s: spec.upstreams: an upstream Service runs no replica to restart", name)
				}
				t := restartTime(a.env.Now(), s.Spec.RestartedAt)
				s.Spec.RestartedAt = &t
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Out, "service/%s restarted\n", name)
			return nil
		},
	}
}

// restartTime is now in whole seconds (RFC 3339, as kubectl writes restartedAt), moved past the
// stored value when a restart lands in the same second as the one before: each restart must
// change the spec hash, or it restarts nothing.
func restartTime(now time.Time, prev *time.Time) time.Time {
	t := now.UTC().Truncate(time.Second)
	if prev != nil && !t.After(*prev) {
		t = prev.UTC().Truncate(time.Second).Add(time.Second)
	}
	return t
}

// updateService reads Service name, lets mutate change a copy and writes it back with the
// read's resourceVersion (compare-and-swap), reading again on a conflict (the status and
// scheduler write the Service all the time). mutate's error ends it, nothing written.
func updateService(ctx context.Context, c *client.Client, name string, mutate func(*v1.Service) error) (*v1.Service, error) {
	for attempt := range maxCASAttempts {
		if attempt > 0 {
			d := time.Duration(attempt) * 20 * time.Millisecond
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d + rand.N(d)):
			}
		}
		o, err := c.Get(ctx, v1.KindService, name)
		if err != nil {
			return nil, err
		}
		s := o.DeepCopyObject().(*v1.Service)
		if s.Metadata.DeletionTimestamp != nil {
			return nil, fmt.Errorf("services/%s is being deleted", name)
		}
		if err := mutate(s); err != nil {
			return nil, err
		}
		// s carries the resourceVersion just read: the write is compare-and-swap.
		res, err := c.Put(ctx, s, client.PutOptions{})
		if client.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out, ok := res.Object.(*v1.Service)
		if !ok {
			return nil, fmt.Errorf("services/%s: the server answered with a %s", name, res.Object.GetTypeMeta().Kind)
		}
		return out, nil
	}
	return nil, fmt.Errorf("services/%s: still conflicting after %d attempts; try again", name, maxCASAttempts)
}

// serviceArg reads the one Service argument of verb: "svc/NAME", "service/NAME",
// "services/NAME" or a plain NAME. Other kinds are refused by name.
func serviceArg(verb string, args []string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("%s takes one Service (svc/NAME or NAME), got %d arguments", verb, len(args))
	}
	arg := strings.TrimSpace(args[0])
	kind, name, hasKind := strings.Cut(arg, "/")
	if !hasKind {
		if _, _, err := resolveKind(arg); err == nil {
			return "", fmt.Errorf("%s needs a Service name: svc/NAME or NAME, got the kind %q alone", verb, arg)
		}
		kind, name = "svc", arg
	}
	info, isRoutes, err := resolveKind(kind)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", verb, arg, err)
	}
	if isRoutes || info.Kind != v1.KindService {
		plural := info.Plural
		if isRoutes {
			plural = routesKind
		}
		return "", fmt.Errorf("%s works on Services only, got %s/%s", verb, plural, name)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%s: %q is not svc/NAME", verb, arg)
	}
	if !v1.IsDNSLabel(name) {
		return "", fmt.Errorf("%s: services/%s: metadata.name: must be a DNS label (lowercase letters, digits, '-')", verb, name)
	}
	return name, nil
}
