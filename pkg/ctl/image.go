package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "List the images each node holds; push one from this machine's Docker to a node, or make nodes fetch one",
	}
	cmd.AddCommand(a.imageLsCommand(), a.imagePushCommand(), a.imagePullCommand())
	return cmd
}

// normalRef is ref as the engine lists it: "nginx" and "docker.io/library/nginx" are
// "nginx:latest"; a reference that does not parse is left as it is.
func normalRef(ref string) string {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(n)
}

// imageUsers are the Services whose spec.image names im by tag (one row of ls per tag: ""
// for an untagged image), by one of its digests, or by its ID.
func imageUsers(im nodeapi.ImageInfo, tag string, svcs []*v1.Service) []string {
	refs := map[string]bool{im.ID: true}
	if tag != "" {
		refs[normalRef(tag)] = true
	}
	for _, r := range im.RepoDigests {
		refs[normalRef(r)] = true
	}
	var out []string
	for _, s := range svcs {
		if img := s.Spec.Image; img != "" && (refs[normalRef(img)] || refs[img] || refs["sha256:"+img]) {
			out = append(out, s.Metadata.Name)
		}
	}
	sort.Strings(out)
	return out
}

// imageRow is one line of `ctl image ls`.
type imageRow struct {
	Node      string   `json:"node"`
	Image     string   `json:"image"`
	ID        string   `json:"id"`
	SizeBytes int64    `json:"sizeBytes"`
	Services  []string `json:"services"`
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// imagesOnNodes asks every node for its images; a node that does not answer is in the
// error, naming it, and the others' images are still returned.
func imagesOnNodes(ctx context.Context, c *client.Client, nodes []string) (map[string][]nodeapi.ImageInfo, error) {
	var (
		mu   sync.Mutex
		out  = map[string][]nodeapi.ImageInfo{}
		errs []string
		wg   sync.WaitGroup
	)
	for _, n := range nodes {
		wg.Go(func() {
			ims, err := c.Images(ctx, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("node %s: %v", n, err))
				return
			}
			out[n] = ims
		})
	}
	wg.Wait()
	sort.Strings(errs)
	if len(errs) > 0 {
		return out, fmt.Errorf("images not listed for %d node(s): %s", len(errs), strings.Join(errs, "; "))
	}
	return out, nil
}

func (a *app) imageLsCommand() *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "ls [NODE...]",
		Short: "List the images each node's engine holds, their size and the Services that use them",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client()
			if err != nil {
				return err
			}
			nodes, err := nodeNames(ctx, c)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				for _, n := range args {
					if !slices.Contains(nodes, n) {
						return fmt.Errorf("nodes/%s: not a node of this cluster (nodes: %s)", n, strings.Join(nodes, ", "))
					}
				}
				nodes = args
			}
			var svcs []*v1.Service
			l, err := c.List(ctx, v1.KindService, "")
			if err != nil {
				return err
			}
			for _, o := range l.Items {
				svcs = append(svcs, o.(*v1.Service))
			}
			byNode, lsErr := imagesOnNodes(ctx, c, nodes)
			rows := []imageRow{}
			for _, n := range slices.Sorted(slices.Values(nodes)) {
				for _, im := range byNode[n] {
					tags := im.RepoTags
					if len(tags) == 0 {
						tags = []string{""}
					}
					for _, tag := range tags {
						users := imageUsers(im, tag, svcs)
						if users == nil {
							users = []string{}
						}
						if tag == "" && !all && len(users) == 0 {
							continue
						}
						name := tag
						if name == "" {
							name = "<none>"
						}
						rows = append(rows, imageRow{Node: n, Image: name, ID: im.ID, SizeBytes: im.SizeBytes, Services: users})
					}
				}
			}
			sort.SliceStable(rows, func(i, j int) bool {
				if rows[i].Node != rows[j].Node {
					return rows[i].Node < rows[j].Node
				}
				return rows[i].Image < rows[j].Image
			})
			switch output {
			case "json":
				enc := json.NewEncoder(a.env.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rows); err != nil {
					return err
				}
			case "", "table":
				tw := tabwriter.NewWriter(a.env.Out, 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "NODE\tIMAGE\tID\tSIZE\tSERVICES")
				for _, r := range rows {
					users := "-"
					if len(r.Services) > 0 {
						users = strings.Join(r.Services, ",")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Node, r.Image, shortImageID(r.ID), humanBytes(r.SizeBytes), users)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("-o %q: want table or json", output)
			}
			return lsErr
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also list untagged images no Service uses")
	return cmd
}

// countingReader counts what passes through it (read by the progress printer).
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// localDocker runs the docker CLI against this machine's engine (DOCKER_HOST when set): ctl
// links no Docker client library.
func (a *app) localDocker(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = os.Environ()
	if h := a.env.Getenv("DOCKER_HOST"); h != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	return cmd
}

// pushTarget is --to, else the first Ready node by name.
func pushTarget(ctx context.Context, c *client.Client, to string) (string, error) {
	l, err := c.List(ctx, v1.KindNode, "")
	if err != nil {
		return "", err
	}
	var names, ready []string
	for _, o := range l.Items {
		n := o.(*v1.Node)
		names = append(names, n.Metadata.Name)
		if cond := v1.FindCondition(n.Status.Conditions, v1.NodeReady); cond != nil && cond.Status == v1.ConditionTrue {
			ready = append(ready, n.Metadata.Name)
		}
	}
	sort.Strings(names)
	sort.Strings(ready)
	switch {
	case to != "" && slices.Contains(names, to):
		return to, nil
	case to != "":
		return "", fmt.Errorf("--to %s: not a node of this cluster (nodes: %s)", to, strings.Join(names, ", "))
	case len(ready) == 0:
		return "", errors.New("no Ready node to push to: choose one with --to")
	}
	return ready[0], nil
}

func (a *app) imagePushCommand() *cobra.Command {
	var to string
	var force bool
	cmd := &cobra.Command{
		Use:   "push IMAGE",
		Short: "Send an image from this machine's Docker engine to a node (docker save | load), unless it is already there",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ref := args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			node, err := pushTarget(ctx, c, to)
			if err != nil {
				return err
			}
			var stderr bytes.Buffer
			inspect := a.localDocker(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
			inspect.Stderr = &stderr
			out, err := inspect.Output()
			if err != nil {
				return fmt.Errorf("image %s: not in this machine's Docker engine: %v: %s", ref, err, strings.TrimSpace(stderr.String()))
			}
			id := strings.TrimSpace(string(out))
			ims, err := c.Images(ctx, node)
			if err != nil {
				return err
			}
			for _, im := range ims {
				if im.ID != id || force {
					continue
				}
				if slices.ContainsFunc(im.RepoTags, func(t string) bool { return normalRef(t) == normalRef(ref) }) {
					fmt.Fprintf(a.env.Out, "image %s (%s) already on %s, 0 bytes sent\n", ref, shortImageID(id), node)
					return nil
				}
				fmt.Fprintf(a.env.Err, "image %s is on %s but not tagged %s: sending it\n", shortImageID(id), node, ref)
			}
			stderr.Reset()
			save := a.localDocker(ctx, "save", ref)
			save.Stderr = &stderr
			pipe, err := save.StdoutPipe()
			if err != nil {
				return err
			}
			if err := save.Start(); err != nil {
				return fmt.Errorf("docker save %s: %w", ref, err)
			}
			cr := &countingReader{r: pipe}
			done := make(chan struct{})
			go func() {
				t := time.NewTicker(2 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						fmt.Fprintf(a.env.Err, "%s: %s sent to %s\n", ref, humanBytes(cr.n.Load()), node)
					}
				}
			}()
			res, lerr := c.LoadImage(ctx, node, cr)
			close(done)
			if lerr != nil {
				_ = save.Process.Kill() // nobody reads the rest
			}
			serr := save.Wait()
			switch {
			case serr != nil && lerr == nil:
				return fmt.Errorf("docker save %s: %v: %s", ref, serr, strings.TrimSpace(stderr.String()))
			case lerr != nil && stderr.Len() > 0:
				return fmt.Errorf("%w (docker save: %s)", lerr, strings.TrimSpace(stderr.String()))
			case lerr != nil:
				return lerr
			}
			n := cr.n.Load()
			fmt.Fprintf(a.env.Out, "pushed %s (%s) to %s: %s (%d bytes) sent, loaded %s\n", ref, shortImageID(id), node, humanBytes(n), n, strings.Join(res.Loaded, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "node to send it to (default: the first Ready node by name)")
	cmd.Flags().BoolVar(&force, "force", false, "send it even when the node already holds the image")
	return cmd
}

func (a *app) imagePullCommand() *cobra.Command {
	var to []string
	cmd := &cobra.Command{
		Use:   "pull IMAGE --to NODE[,NODE...]",
		Short: "Make nodes fetch an image through their pull order: nothing if they hold it, else from another node, else from its registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ref := args[0]
			if len(to) == 0 {
				return errors.New("--to: required (the nodes that must fetch the image)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			for _, n := range to {
				node, err := pushTarget(ctx, c, n)
				if err != nil {
					return err
				}
				t0 := time.Now()
				res, err := c.PullImage(ctx, node, ref)
				if err != nil {
					return err
				}
				took := time.Since(t0).Round(time.Millisecond)
				switch res.From {
				case "local":
					fmt.Fprintf(a.env.Out, "%s: image %s (%s) already there\n", node, ref, shortImageID(res.ID))
				case "registry":
					fmt.Fprintf(a.env.Out, "%s: image %s (%s) pulled from its registry in %s\n", node, ref, shortImageID(res.ID), took)
				default:
					fmt.Fprintf(a.env.Out, "%s: image %s (%s) fetched from node %s in %s: %s (%d bytes)\n", node, ref, shortImageID(res.ID), res.From, took, humanBytes(res.Bytes), res.Bytes)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&to, "to", nil, "the nodes that must fetch the image, in turn (repeat or comma-separate)")
	return cmd
}
