package ctl

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

func (a *app) rolloutHistoryCommand() *cobra.Command {
	var revision int64
	cmd := &cobra.Command{
		Use:   "history svc/NAME [--revision N]",
		Short: "List a Service's revisions, or print one",
		Long: "history lists the revisions the scheduler keeps in status.revisionHistory (10 by\n" +
			"default) and the current one, each with what changed from the one before it: image,\n" +
			"command, args, env names (never values), restartedAt, Secret values, other fields by\n" +
			"name. --revision N prints that revision as JSON: its number, spec hash, creation time\n" +
			"and the container-defining part of its spec (replicas, routes, placement and the\n" +
			"update strategy are not kept per revision).",
		Example: "  ctl rollout history svc/hello\n  ctl rollout history hello --revision 2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := serviceArg("rollout history", args)
			if err != nil {
				return err
			}
			if revision < 0 {
				return fmt.Errorf("services/%s: --revision must be 1 or more, got %d", name, revision)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.Get(cmd.Context(), v1.KindService, name)
			if err != nil {
				return err
			}
			revs := revisions(o.(*v1.Service))
			if revision > 0 {
				for _, r := range revs {
					if r.Revision == revision {
						b, err := json.MarshalIndent(r.ServiceRevision, "", "  ")
						if err != nil {
							return fmt.Errorf("services/%s revision %d: %w", name, revision, err)
						}
						_, err = fmt.Fprintf(a.env.Out, "%s\n", b)
						return err
					}
				}
				return fmt.Errorf("services/%s: no revision %d (kept: %s)", name, revision, keptList(revs))
			}
			if len(revs) == 0 {
				fmt.Fprintf(a.env.Out, "service/%s has no revisions yet (the scheduler has not seen it)\n", name)
				return nil
			}
			now := a.env.Now()
			t := table{header: []string{"REVISION", "CHANGE", "AGE"}}
			for i, r := range revs {
				num := revisionNumber(r.Revision)
				if r.current {
					num += " (current)"
				}
				var prev *v1.ServiceRevision
				if i > 0 {
					prev = &revs[i-1].ServiceRevision
				}
				t.rows = append(t.rows, []string{num, changeSummary(prev, &r.ServiceRevision), age(now, r.CreatedAt)})
			}
			return t.write(a.env.Out, false)
		},
	}
	cmd.Flags().Int64Var(&revision, "revision", 0, "print revision N as JSON")
	return cmd
}

type listedRevision struct {
	v1.ServiceRevision
	current bool
}

// revisions is the Service's history and its current revision, oldest first. The current
// revision is cut to what the history keeps of a revision, so that the two compare alike.
func revisions(s *v1.Service) []listedRevision {
	var out []listedRevision
	for _, r := range s.Status.RevisionHistory {
		out = append(out, listedRevision{ServiceRevision: r})
	}
	if cur := s.Status.CurrentRevision; cur != nil {
		r := *cur
		r.Spec.Replicas, r.Spec.Routes, r.Spec.Placement, r.Spec.Update = nil, nil, nil, nil
		out = append(out, listedRevision{ServiceRevision: r, current: true})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out
}

func revisionNumber(n int64) string {
	if n == 0 {
		return "-" // written before revisions were numbered
	}
	return strconv.FormatInt(n, 10)
}

func keptList(revs []listedRevision) string {
	if len(revs) == 0 {
		return "none"
	}
	var s []string
	for _, r := range revs {
		n := revisionNumber(r.Revision)
		if r.current {
			n += " (current)"
		}
		s = append(s, n)
	}
	return strings.Join(s, ", ")
}

// changeSummary says in a line what cur changed from prev (nil: the oldest revision kept).
func changeSummary(prev, cur *v1.ServiceRevision) string {
	if prev == nil {
		if cur.Spec.Image == "" {
			return "upstreams"
		}
		return "image " + cur.Spec.Image
	}
	p, c := &prev.Spec, &cur.Spec
	var parts []string
	if p.Image != c.Image {
		parts = append(parts, fmt.Sprintf("image %s -> %s", none(p.Image), none(c.Image)))
	}
	if !slices.Equal(p.Command, c.Command) {
		parts = append(parts, "command "+quoteArgs(c.Command))
	}
	if !slices.Equal(p.Args, c.Args) {
		parts = append(parts, "args "+quoteArgs(c.Args))
	}
	if s := envChange(p.Env, c.Env); s != "" {
		parts = append(parts, s)
	}
	if !timeEqual(p.RestartedAt, c.RestartedAt) {
		if c.RestartedAt == nil {
			parts = append(parts, "restartedAt removed")
		} else {
			parts = append(parts, "restarted at "+c.RestartedAt.UTC().Format(time.RFC3339))
		}
	}
	if other := otherChanges(p, c); len(other) > 0 {
		parts = append(parts, strings.Join(other, ", ")+" changed")
	}
	if len(parts) == 0 {
		if spechash.SpecPart(prev.SpecHash) == spechash.SpecPart(cur.SpecHash) && prev.SpecHash != cur.SpecHash {
			return "Secret values"
		}
		return "no container change"
	}
	return strings.Join(parts, "; ")
}

func quoteArgs(ss []string) string {
	if len(ss) == 0 {
		return "<none>"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// envChange names the variables added, removed and changed: names only, values may be
// secret.
func envChange(prev, cur []v1.EnvVar) string {
	pm, cm := map[string]v1.EnvVar{}, map[string]v1.EnvVar{}
	for _, e := range prev {
		pm[e.Name] = e
	}
	for _, e := range cur {
		cm[e.Name] = e
	}
	var added, removed, changed []string
	for n, e := range cm {
		old, ok := pm[n]
		switch {
		case !ok:
			added = append(added, n)
		case !reflect.DeepEqual(old, e):
			changed = append(changed, n)
		}
	}
	for n := range pm {
		if _, ok := cm[n]; !ok {
			removed = append(removed, n)
		}
	}
	var parts []string
	for _, g := range []struct {
		sign  string
		names []string
	}{{"+", added}, {"-", removed}, {"~", changed}} {
		sort.Strings(g.names)
		for _, n := range g.names {
			parts = append(parts, g.sign+n)
		}
	}
	if len(parts) == 0 {
		if !reflect.DeepEqual(prev, cur) && len(prev) > 0 {
			return "env order"
		}
		return ""
	}
	return "env " + strings.Join(parts, " ")
}

// otherChanges names, by their JSON field, the spec fields besides those summarised above
// that differ (ports, healthCheck, volumes, resources, container options, ...).
func otherChanges(p, c *v1.ServiceSpec) []string {
	pm, err1 := specFields(p)
	cm, err2 := specFields(c)
	if err1 != nil || err2 != nil {
		return []string{"spec"}
	}
	skip := map[string]bool{"image": true, "command": true, "args": true, "env": true, "restartedAt": true}
	keys := map[string]bool{}
	for k := range pm {
		keys[k] = true
	}
	for k := range cm {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if !skip[k] && string(pm[k]) != string(cm[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func specFields(sp *v1.ServiceSpec) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	err = json.Unmarshal(b, &m)
	return m, err
}
