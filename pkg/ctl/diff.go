package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// Exit statuses of diff, as kubectl's.
const (
	diffNone  = 0
	diffFound = 1
	diffError = 2
)

func (a *app) diffCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "diff -f PATH",
		Short: "Show what apply would change (exit 0: no change, 1: changes, >1: error)",
		Long: "diff compares every object in PATH with the live object, after a server-side dry run of the apply,\n" +
			"ignoring status and the metadata the store owns (uid, generation, resourceVersion, timestamps).\n" +
			"Secret values are never shown: the API redacts them, so a changed value alone shows no diff.",
		Example: "  ctl diff -f specs/hello",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			fail := func(err error) error { return &exitError{code: diffError, err: err} }
			r := &reader{stdin: a.env.In, stderr: a.env.Err, goBin: a.env.GoBin}
			items, err := r.read(ctx, files)
			if err != nil {
				return fail(err)
			}
			if err := prepare(items); err != nil {
				return fail(err)
			}
			c, err := a.client()
			if err != nil {
				return fail(err)
			}
			changed := false
			for _, it := range items {
				k := v1.KeyOf(it.obj)
				live, err := c.Get(ctx, k.Kind, k.Name)
				if err != nil && !client.IsNotFound(err) {
					return fail(err)
				}
				if err != nil {
					live = nil
				}
				res, err := c.Put(ctx, it.obj, client.PutOptions{DryRun: true})
				if err != nil {
					return fail(err)
				}
				d, err := objectDiff(k.String(), live, res.Object)
				if err != nil {
					return fail(err)
				}
				if d != "" {
					changed = true
					if _, err := io.WriteString(a.env.Out, d); err != nil {
						return fail(err)
					}
				}
			}
			if changed {
				return silentExit(diffFound)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	return cmd
}

// diffText renders an object for diffing: indented JSON without status and store metadata.
func diffText(o v1.Object) ([]string, error) {
	if o == nil {
		return nil, nil
	}
	b, err := json.MarshalIndent(comparable(redact(o)), "", "  ")
	if err != nil {
		return nil, err
	}
	return strings.Split(string(b), "\n"), nil
}

// objectDiff is a unified diff from live (nil: does not exist) to want, "" when equal.
func objectDiff(name string, live, want v1.Object) (string, error) {
	a, err := diffText(live)
	if err != nil {
		return "", err
	}
	b, err := diffText(want)
	if err != nil {
		return "", err
	}
	from := name + " (live)"
	if live == nil {
		from = "/dev/null"
	}
	return unifiedDiff(from, name+" (after apply)", a, b, 3), nil
}

// unifiedDiff is a line diff in unified format with ctx lines of context, "" when a equals b.
// It uses the longest common subsequence, which is plenty for objects of a few hundred lines.
func unifiedDiff(fromName, toName string, a, b []string, ctx int) string {
	type op struct {
		kind byte // ' ', '-', '+'
		line string
		ai   int // line number in a before this op (0-based)
		bi   int
	}
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	changed := false
	for _, o := range ops {
		if o.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk: from ctx lines before this change to ctx lines after the last change that is
		// at most 2*ctx unchanged lines from the next.
		start := max(0, k-ctx)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		var aCount, bCount int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aCount++
			}
			if o.kind != '-' {
				bCount++
			}
		}
		aStart, bStart := ops[start].ai+1, ops[start].bi+1
		if aCount == 0 {
			aStart--
		}
		if bCount == 0 {
			bStart--
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", aStart, aCount, bStart, bCount)
		for _, o := range ops[start:end] {
			sb.WriteByte(o.kind)
			sb.WriteString(o.line)
			sb.WriteByte('\n')
		}
		k = end
	}
	return sb.String()
}
