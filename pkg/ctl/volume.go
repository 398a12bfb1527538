package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

func (a *app) volumeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "List, back up and restore the named volumes of Services' replicas",
	}
	cmd.AddCommand(a.volumeLsCommand(), a.volumeBackupCommand(), a.volumeRestoreCommand())
	return cmd
}

// namedVolumes are the named (not bind) volumes svc mounts.
func namedVolumes(svc *v1.Service) []string {
	var out []string
	for _, v := range svc.Spec.Volumes {
		if v.Source != "" && !strings.HasPrefix(v.Source, "/") && !slices.Contains(out, v.Source) {
			out = append(out, v.Source)
		}
	}
	return out
}

// nodeNames lists the cluster's nodes.
func nodeNames(ctx context.Context, c *client.Client) ([]string, error) {
	l, err := c.List(ctx, v1.KindNode, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range l.Items {
		out = append(out, o.GetMetadata().Name)
	}
	sort.Strings(out)
	return out, nil
}

// volumesOnNodes asks every node for its volumes (of service, or all); a node that does not
// answer is in the error, naming it, and the others' volumes are still returned.
func volumesOnNodes(ctx context.Context, c *client.Client, nodes []string, service string) ([]nodeapi.VolumeInfo, error) {
	var (
		mu   sync.Mutex
		out  []nodeapi.VolumeInfo
		errs []string
		wg   sync.WaitGroup
	)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vs, err := c.Volumes(ctx, n, service)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("node %s: %v", n, err))
				return
			}
			out = append(out, vs...)
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Volume != b.Volume {
			return a.Volume < b.Volume
		}
		return a.Node < b.Node
	})
	sort.Strings(errs)
	if len(errs) > 0 {
		return out, fmt.Errorf("volumes not listed for %d node(s): %s", len(errs), strings.Join(errs, "; "))
	}
	return out, nil
}

// humanBytes prints n in binary units.
func humanBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *app) volumeLsCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "ls [SERVICE]",
		Short: "List where each replica's named volume lives, and its size",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client()
			if err != nil {
				return err
			}
			service := ""
			if len(args) == 1 {
				service = args[0]
				if _, err := c.Get(ctx, v1.KindService, service); err != nil {
					return err
				}
			}
			nodes, err := nodeNames(ctx, c)
			if err != nil {
				return err
			}
			vols, lsErr := volumesOnNodes(ctx, c, nodes, service)
			// Replicas the scheduler placed on a node count as that volume's, with or without
			// a container there now.
			svcs := map[string]*v1.Service{}
			if l, err := c.List(ctx, v1.KindService, ""); err == nil {
				for _, o := range l.Items {
					svcs[o.GetMetadata().Name] = o.(*v1.Service)
				}
			}
			for i, v := range vols {
				if s := svcs[v.Service]; s != nil {
					for _, as := range s.Status.Assignments {
						if as.Node == v.Node && !slices.Contains(v.Replicas, as.Index) {
							vols[i].Replicas = append(vols[i].Replicas, as.Index)
						}
					}
					slices.Sort(vols[i].Replicas)
				}
			}
			switch output {
			case "json":
				enc := json.NewEncoder(a.env.Out)
				enc.SetIndent("", "  ")
				if vols == nil {
					vols = []nodeapi.VolumeInfo{}
				}
				if err := enc.Encode(vols); err != nil {
					return err
				}
			case "", "table":
				tw := tabwriter.NewWriter(a.env.Out, 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "SERVICE\tREPLICAS\tVOLUME\tNODE\tSIZE\tIN USE BY\tAGE")
				for _, v := range vols {
					reps := "-"
					if len(v.Replicas) > 0 {
						var s []string
						for _, r := range v.Replicas {
							s = append(s, strconv.Itoa(int(r)))
						}
						reps = strings.Join(s, ",")
					}
					inUse := "-"
					if len(v.InUseBy) > 0 {
						inUse = strings.Join(v.InUseBy, ",")
					}
					age := "-"
					if !v.CreatedAt.IsZero() {
						age = humanDuration(a.env.Now().Sub(v.CreatedAt))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Service, reps, v.Volume, v.Node, humanBytes(v.SizeBytes), inUse, age)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(vols) == 0 && lsErr == nil {
					fmt.Fprintln(a.env.Err, "no named volumes found")
				}
			default:
				return fmt.Errorf("-o %q: want table or json", output)
			}
			return lsErr
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// volumeTarget is the node holding replica index's volume and the volume's name.
type volumeTarget struct {
	node, volume string
	size         int64 // -1 unknown
}

// findVolume resolves SERVICE INDEX to the node holding the volume: --node, else where the
// replica is placed (or reported), else the one node that holds the volume (a replica scaled
// to 0 has no placement).
func findVolume(ctx context.Context, c *client.Client, service string, index int32, node, volume string) (volumeTarget, error) {
	obj, err := c.Get(ctx, v1.KindService, service)
	if err != nil {
		return volumeTarget{}, err
	}
	svc := obj.(*v1.Service)
	names := namedVolumes(svc)
	switch {
	case len(names) == 0:
		return volumeTarget{}, fmt.Errorf("services/%s mounts no named volume (spec.volumes)", service)
	case volume == "" && len(names) > 1:
		return volumeTarget{}, fmt.Errorf("services/%s mounts %d named volumes (%s): choose one with --volume", service, len(names), strings.Join(names, ", "))
	case volume == "":
		volume = names[0]
	case !slices.Contains(names, volume):
		return volumeTarget{}, fmt.Errorf("services/%s mounts no named volume %q (it mounts %s)", service, volume, strings.Join(names, ", "))
	}
	if node == "" {
		for _, t := range logTargets(svc, index) {
			node = t.node
			break
		}
	}
	var nodes []string
	if node != "" {
		nodes = []string{node}
	} else if nodes, err = nodeNames(ctx, c); err != nil {
		return volumeTarget{}, err
	}
	vols, lsErr := volumesOnNodes(ctx, c, nodes, service)
	var holders []nodeapi.VolumeInfo
	for _, v := range vols {
		if v.Volume == volume {
			holders = append(holders, v)
		}
	}
	switch {
	case len(holders) == 1:
		return volumeTarget{node: holders[0].Node, volume: volume, size: holders[0].SizeBytes}, nil
	case lsErr != nil:
		return volumeTarget{}, fmt.Errorf("services/%s replica %d: volume %s: %w", service, index, volume, lsErr)
	case len(holders) == 0 && node != "":
		return volumeTarget{}, fmt.Errorf("services/%s replica %d: node %s has no volume %s", service, index, node, volume)
	case len(holders) == 0:
		return volumeTarget{}, fmt.Errorf("services/%s replica %d: no node holds volume %s", service, index, volume)
	}
	var on []string
	for _, h := range holders {
		on = append(on, h.Node)
	}
	return volumeTarget{}, fmt.Errorf("services/%s replica %d is placed nowhere and volume %s is on %d nodes (%s): choose one with --node", service, index, volume, len(on), strings.Join(on, ", "))
}

// progress prints "\rWHAT: 12.0MiB / 40.0MiB" to w every interval while the copy runs (on a
// terminal only), and a last line at the end.
type progress struct {
	what  string
	total int64
	n     atomic.Int64
	w     io.Writer
	stop  chan struct{}
	done  chan struct{}
}

func startProgress(w io.Writer, what string, total int64, show bool) *progress {
	p := &progress{what: what, total: total, w: w, stop: make(chan struct{}), done: make(chan struct{})}
	if !show {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				fmt.Fprintf(p.w, "\r%s: %s", p.what, p.line())
			}
		}
	}()
	return p
}

func (p *progress) line() string {
	n := p.n.Load()
	if p.total > 0 {
		pct := min(100, float64(n)*100/float64(p.total))
		return fmt.Sprintf("%s / ~%s (%.0f%%)   ", humanBytes(n), humanBytes(p.total), pct)
	}
	return humanBytes(n) + "   "
}

func (p *progress) Write(b []byte) (int, error) { p.n.Add(int64(len(b))); return len(b), nil }

func (p *progress) end() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.stop)
	<-p.done
	fmt.Fprintln(p.w)
}

func (a *app) volumeBackupCommand() *cobra.Command {
	var node, volume string
	cmd := &cobra.Command{
		Use:   "backup SERVICE INDEX FILE",
		Short: "Write a tar of a replica's named volume to FILE (- for stdout)",
		Long: "Write a tar archive of the named volume of replica INDEX of SERVICE, read by the agent of the\n" +
			"node holding it, to FILE (- for stdout). Paths in the archive are relative to the volume's\n" +
			"root. A running replica is not stopped: stop or scale it to 0 for a consistent copy of a\n" +
			"database. Needs the admin scope.",
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, index, t, err := a.volumeArgs(ctx, args, node, volume)
			if err != nil {
				return err
			}
			var w io.Writer = a.env.Out
			var f *os.File
			if args[2] != "-" {
				// A backup that fails leaves FILE as it was: it is written beside it and
				// renamed over it at the end.
				if f, err = os.CreateTemp(filepath.Dir(args[2]), filepath.Base(args[2])+".partial-*"); err != nil {
					return err
				}
				w = f
			}
			p := startProgress(a.env.Err, fmt.Sprintf("backup of %s (%s-%d) on %s", t.volume, args[0], index, t.node), t.size, isTerminal(a.env.Err))
			n, err := c.BackupVolume(ctx, t.node, t.volume, args[0], index, io.MultiWriter(w, p))
			p.end()
			if f != nil {
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(f.Name(), args[2])
				}
				if err != nil {
					_ = os.Remove(f.Name())
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Err, "volume %s of %s-%d on node %s: %s written to %s\n", t.volume, args[0], index, t.node, humanBytes(n), args[2])
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node holding the volume (default: where the replica is placed)")
	cmd.Flags().StringVar(&volume, "volume", "", "the volume, when the Service mounts several")
	return cmd
}

func (a *app) volumeRestoreCommand() *cobra.Command {
	var node, volume string
	cmd := &cobra.Command{
		Use:   "restore SERVICE INDEX FILE",
		Short: "Extract a tar (FILE, - for stdin) into a stopped replica's named volume",
		Long: "Extract the tar archive FILE (- for stdin; paths relative to the volume's root, as backup\n" +
			"writes them) into the named volume of replica INDEX of SERVICE, over what it holds. Refused\n" +
			"while a running container mounts the volume: scale the Service to 0 first. Needs the admin scope.",
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, index, t, err := a.volumeArgs(ctx, args, node, volume)
			if err != nil {
				return err
			}
			var r io.Reader = a.env.In
			var total int64 = -1
			if args[2] != "-" {
				f, err := os.Open(args[2])
				if err != nil {
					return err
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil {
					total = st.Size()
				}
				r = f
			}
			p := startProgress(a.env.Err, fmt.Sprintf("restore of %s (%s-%d) on %s", t.volume, args[0], index, t.node), total, isTerminal(a.env.Err))
			res, err := c.RestoreVolume(ctx, t.node, t.volume, args[0], index, io.TeeReader(r, p))
			p.end()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Err, "volume %s of %s-%d on node %s: %s restored from %s\n", res.Volume, args[0], index, res.Node, humanBytes(res.Bytes), args[2])
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node holding the volume (default: where the replica is placed, else the one node that has it)")
	cmd.Flags().StringVar(&volume, "volume", "", "the volume, when the Service mounts several")
	return cmd
}

// volumeArgs resolves the SERVICE INDEX arguments of backup and restore to the volume and the
// node that holds it.
func (a *app) volumeArgs(ctx context.Context, args []string, node, volume string) (*client.Client, int32, volumeTarget, error) {
	index, err := parseIndex(args[1])
	if err != nil {
		return nil, 0, volumeTarget{}, err
	}
	c, err := a.client()
	if err != nil {
		return nil, 0, volumeTarget{}, err
	}
	t, err := findVolume(ctx, c, args[0], index, node, volume)
	if err != nil {
		return nil, 0, volumeTarget{}, err
	}
	return c, index, t, nil
}

func parseIndex(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("INDEX %q: want a replica index (0, 1, ...)", s)
	}
	return int32(n), nil
}
