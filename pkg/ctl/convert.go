package ctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/compose"
)

// convertCommand is `ctl convert FILE... [-o DIR] [--strict]` (docs/convert.md): Compose files
// in, a Go spec out. Every field it does not map goes to stderr with its Compose path.
func (a *app) convertCommand() *cobra.Command {
	var (
		outDir   string
		strict   bool
		profiles []string
		project  string
	)
	cmd := &cobra.Command{
		Use:   "convert FILE... [-o DIR] [--strict]",
		Short: "Convert Docker Compose files into a Go spec (package main using pkg/spec)",
		Long: "Reads Compose files as `docker compose` does (later files override earlier ones; .env and the\n" +
			"environment interpolate; extends, include, anchors and profiles apply), maps them to Services and\n" +
			"writes DIR/main.go (or prints it). Fields it cannot map are listed on stderr with their Compose\n" +
			"path; --strict makes them an error. See docs/convert.md.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			res, err := compose.Convert(cmd.Context(), files, compose.Options{
				Env: os.Environ(), Profiles: profiles, ProjectName: project})
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintln(a.env.Err, n.String())
			}
			if strict && res.Unmapped > 0 {
				return fmt.Errorf("convert: %d Compose fields not mapped (--strict); nothing written", res.Unmapped)
			}
			src, err := compose.Render(res)
			if err != nil {
				return err
			}
			if outDir == "" {
				_, err := a.env.Out.Write(src)
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			path := filepath.Join(outDir, "main.go")
			if err := os.WriteFile(path, src, 0o644); err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			built, err := a.buildSpec(cmd.Context(), outDir)
			if err != nil {
				return err
			}
			nsvc, ncfg := 0, 0
			for _, o := range res.Objects {
				if o.GetTypeMeta().Kind == v1.KindConfig {
					ncfg++
				} else {
					nsvc++
				}
			}
			configs := ""
			if ncfg > 0 {
				configs = fmt.Sprintf(", %d configs", ncfg)
			}
			fmt.Fprintf(a.env.Err, "wrote %s (%s): %d services%s, %d secret keys to create, %d fields not mapped\n",
				path, built, nsvc, configs, len(res.Secrets), res.Unmapped)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&outDir, "output", "o", "", "write DIR/main.go instead of printing the spec")
	f.BoolVar(&strict, "strict", false, "fail when any Compose field is not mapped")
	f.StringSliceVar(&profiles, "profile", nil, "enable a Compose profile (repeatable)")
	f.StringVarP(&project, "project-name", "p", "", "project name (default: the directory's name)")
	return cmd
}

// buildSpec compiles the written spec with `go build` when DIR is inside a Go module (as `ctl
// apply -f DIR` will run it), so exit 0 means it builds. Outside a module it says so: the source
// was parsed and gofmt-ed, and the objects validated, but nothing compiled it.
func (a *app) buildSpec(ctx context.Context, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("convert: %w", err)
	}
	root, ok := moduleRoot(abs)
	if !ok {
		return "not built: outside a Go module", nil
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return "", fmt.Errorf("convert: %w", err)
	}
	pkg := "./" + filepath.ToSlash(rel)
	var stderr bytes.Buffer
	c := exec.CommandContext(ctx, a.env.GoBin, "build", "-o", os.DevNull, pkg)
	c.Dir = root
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("convert: the written spec does not build (go build %s in %s): %s", pkg, root, msg)
	}
	return "built", nil
}
