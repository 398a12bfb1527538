package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

func (a *app) applyCommand() *cobra.Command {
	var (
		files   []string
		dryRun  bool
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f ...]",
		Short: "Create or update objects from JSON files, directories, stdin or a Go spec package",
		Long: "apply reads JSON objects, JSON arrays or newline-delimited JSON from files, from every *.json\n" +
			"of a directory, or from stdin (-f -). A directory holding a Go main package is run with\n" +
			"`go run` and its output applied. Every object is defaulted and validated before any is sent.",
		Example: "  ctl apply -f specs/hello\n  ctl apply -f web.json --wait\n  ctl get svc web -o json | ctl apply -f -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r := &reader{stdin: a.env.In, stderr: a.env.Err, goBin: a.env.GoBin}
			items, err := r.read(ctx, files)
			if err != nil {
				return err
			}
			if err := prepare(items); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var failed int
			var services []*v1.Service
			for _, it := range items {
				res, verb, err := applyOne(ctx, c, it.obj, dryRun)
				if err != nil {
					if isFatal(err) {
						return err
					}
					failed++
					fmt.Fprintln(a.env.Err, "error: "+oneLine(a.explain(err)))
					continue
				}
				suffix := ""
				if dryRun {
					suffix = " (server dry run)"
				}
				fmt.Fprintf(a.env.Out, "%s %s%s\n", ref(it.obj), verb, suffix)
				if s, ok := res.(*v1.Service); ok {
					services = append(services, s)
				}
			}
			if failed > 0 {
				return silentExit(1)
			}
			if wait && !dryRun {
				wctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				for _, s := range services {
					if err := waitRollout(wctx, c, s, a.env.Out); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	f.BoolVar(&dryRun, "dry-run", false, "validate on the server and show what would change; change nothing")
	f.BoolVar(&wait, "wait", false, "wait for applied Services to roll out (Ready for their current generation)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

// isFatal reports errors that would fail every other object too (unreachable server, bad token).
func isFatal(err error) bool {
	var ce *client.ConnError
	return errors.As(err, &ce) || client.IsUnauthorized(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// applyOne puts obj and says what happened: created, configured or unchanged.
func applyOne(ctx context.Context, c *client.Client, obj v1.Object, dryRun bool) (v1.Object, string, error) {
	live, err := c.Get(ctx, obj.GetTypeMeta().Kind, obj.GetMetadata().Name)
	if err != nil && !client.IsNotFound(err) {
		return nil, "", err
	}
	if err != nil {
		live = nil
	}
	res, err := c.Put(ctx, obj, client.PutOptions{DryRun: dryRun})
	if err != nil {
		return nil, "", err
	}
	switch {
	case live == nil || res.Created:
		return res.Object, "created", nil
	case !dryRun && live.GetMetadata().ResourceVersion == res.Object.GetMetadata().ResourceVersion:
		return res.Object, "unchanged", nil
	case dryRun && sameDesired(live, res.Object):
		return res.Object, "unchanged", nil
	}
	return res.Object, "configured", nil
}

// sameDesired compares what an operator controls: metadata they write and spec.
func sameDesired(a, b v1.Object) bool {
	ja, err1 := json.Marshal(comparable(a))
	jb, err2 := json.Marshal(comparable(b))
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// comparable strips status and the metadata the store owns.
func comparable(o v1.Object) v1.Object {
	c := o.DeepCopyObject()
	m := c.GetMetadata()
	m.UID, m.Generation, m.ResourceVersion = "", 0, ""
	m.CreationTimestamp, m.DeletionTimestamp = nil, nil
	clearStatus(c)
	return c
}

func clearStatus(o v1.Object) {
	switch t := o.(type) {
	case *v1.Service:
		t.Status = v1.ServiceStatus{}
	case *v1.Node:
		t.Status = v1.NodeStatus{}
	case *v1.DNSRecord:
		t.Status = v1.DNSRecordStatus{}
	case *v1.Lease:
		t.Status = v1.LeaseStatus{}
	case *v1.ReplicaSet:
		t.Status = v1.ReplicaSetStatus{}
	case *v1.Secret:
		t.Status = v1.SecretStatus{}
	}
}

// rollout is where a Service's rollout stands.
type rollout struct {
	done     bool
	err      error  // a failed rollout
	progress string // "hello: 1/3 ready, 1 updated"
}

// rolloutState reads a Service's status: done when Ready=True for its current generation;
// failed when, for the current generation, Progressing=False (any reason but RolloutComplete)
// or Degraded=True for a reason that does not heal by waiting (ImageNotFound, RolloutFailed).
func rolloutState(s *v1.Service) rollout {
	r := rollout{progress: fmt.Sprintf("%s: %d/%d ready, %d updated", s.Metadata.Name, s.Status.ReadyReplicas, s.DesiredReplicas(), s.Status.UpdatedReplicas)}
	name := "service/" + s.Metadata.Name
	if s.Metadata.DeletionTimestamp != nil {
		r.err = fmt.Errorf("%s is being deleted", name)
		return r
	}
	if s.Status.ObservedGeneration < s.Metadata.Generation {
		return r
	}
	conds := s.Status.Conditions
	if p := v1.FindCondition(conds, v1.ServiceProgressing); p != nil && p.Status == v1.ConditionFalse && p.Reason != v1.ReasonRolloutComplete {
		r.err = conditionError(name+": rollout failed", p)
		return r
	}
	if d := v1.FindCondition(conds, v1.ServiceDegraded); d != nil && d.Status == v1.ConditionTrue &&
		(d.Reason == v1.ReasonImageNotFound || d.Reason == v1.ReasonRolloutFailed) {
		r.err = conditionError(name+": rollout failed", d)
		return r
	}
	if c := v1.FindCondition(conds, v1.ServiceReady); c != nil && c.Status == v1.ConditionTrue {
		r.done = true
	}
	return r
}

func conditionError(prefix string, c *v1.Condition) error {
	msg := prefix
	if c.Reason != "" {
		msg += ": " + string(c.Reason)
	}
	if c.Message != "" {
		msg += ": " + c.Message
	}
	return errors.New(msg)
}

// waitRollout watches the Service until rolloutState says done or failed, printing a progress
// line whenever the counts change.
func waitRollout(ctx context.Context, c *client.Client, applied *v1.Service, out io.Writer) error {
	name := applied.Metadata.Name
	last := ""
	check := func(s *v1.Service) (bool, error) {
		st := rolloutState(s)
		if st.progress != last && !st.done {
			fmt.Fprintln(out, st.progress)
			last = st.progress
		}
		if st.err != nil {
			return true, st.err
		}
		if st.done {
			fmt.Fprintf(out, "service/%s rolled out: %d/%d ready\n", name, s.Status.ReadyReplicas, s.DesiredReplicas())
			return true, nil
		}
		return false, nil
	}
	if err := followService(ctx, c, name, check); err != nil {
		return waitErr(ctx, name, err, last)
	}
	return nil
}

// followService reads Service name, then watches it, calling check with every version until
// check says stop (its error is the answer) or ctx ends (ctx's error). A broken or compacted
// watch is resumed from a fresh read. `apply --wait` and `rollout status` share it.
func followService(ctx context.Context, c *client.Client, name string, check func(*v1.Service) (bool, error)) error {
	// The watch starts from the Service's own resourceVersion; when that revision has been
	// compacted away (410), the next round reads the list instead, whose revision is current.
	fromList := false
	for {
		s, rv, err := readService(ctx, c, name, fromList)
		if err != nil {
			return err
		}
		if stop, err := check(s); stop {
			return err
		}
		fromList = false
		wctx, cancel := context.WithCancel(ctx)
		events, err := c.Watch(wctx, v1.KindService, client.WatchOptions{ResourceVersion: rv})
		if client.IsGone(err) {
			cancel()
			fromList = true
			continue
		}
		if err != nil {
			cancel()
			return err
		}
		stop, err := func() (bool, error) {
			defer cancel()
			for ev := range events {
				switch ev.Type {
				case client.ErrorEvent:
					fromList = client.IsGone(ev.Err)
					return false, nil // re-read and watch again
				case client.Deleted:
					if ev.Object.GetMetadata().Name == name {
						return true, fmt.Errorf("service/%s was deleted while waiting", name)
					}
				default:
					if s, ok := ev.Object.(*v1.Service); ok && s.Metadata.Name == name {
						if stop, err := check(s); stop {
							return true, err
						}
					}
				}
			}
			return false, nil
		}()
		if stop {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readService returns the Service and a revision to watch from: its own resourceVersion, or,
// fromList, the list's (current) revision.
func readService(ctx context.Context, c *client.Client, name string, fromList bool) (*v1.Service, string, error) {
	if !fromList {
		o, err := c.Get(ctx, v1.KindService, name)
		if err != nil {
			return nil, "", err
		}
		return o.(*v1.Service), o.GetMetadata().ResourceVersion, nil
	}
	l, err := c.List(ctx, v1.KindService, "")
	if err != nil {
		return nil, "", err
	}
	for _, o := range l.Items {
		if o.GetMetadata().Name == name {
			return o.(*v1.Service), l.ResourceVersion, nil
		}
	}
	return nil, "", fmt.Errorf("services/%s: not found", name)
}

func waitErr(ctx context.Context, name string, err error, last string) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		if last != "" {
			return fmt.Errorf("timed out waiting for service/%s to roll out (last: %s)", name, last)
		}
		return fmt.Errorf("timed out waiting for service/%s to roll out", name)
	}
	return err
}
