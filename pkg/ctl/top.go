package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// topOptions are the flags every top verb shares.
type topOptions struct {
	output  string
	timeout time.Duration
}

func (a *app) topCommand() *cobra.Command {
	o := &topOptions{}
	cmd := &cobra.Command{
		Use:   "top [nodes | svc [NAME]]",
		Short: "Show CPU and memory of nodes and replicas (one docker stats sample)",
		Long: "Ask every node's agent for one sample of its replicas' resource use, as `docker stats --no-stream`\n" +
			"computes it, and print it per node (ctl top, ctl top nodes) or per replica (ctl top svc [NAME]).\n" +
			"A replica's CPU% counts 100 for one CPU; a node's CPU% and MEMORY% are its replicas' share of\n" +
			"the node's CPUs and memory. The nodes are asked at once, each within --timeout; a node that does\n" +
			"not answer is named on stderr and makes the exit status non-zero. Needs the read scope.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runTopNodes(cmd.Context(), o) },
	}
	nodes := &cobra.Command{
		Use:     "nodes",
		Aliases: []string{"node", "no"},
		Short:   "CPU, memory and replicas per node",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.runTopNodes(cmd.Context(), o) },
	}
	svc := &cobra.Command{
		Use:     "svc [NAME]",
		Aliases: []string{"service", "services"},
		Short:   "CPU and memory per replica (of one Service, or of all)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = strings.TrimPrefix(strings.TrimPrefix(args[0], "svc/"), "services/")
			}
			return a.runTopServices(cmd.Context(), o, name)
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&o.output, "output", "o", "table", "table or json")
	pf.DurationVar(&o.timeout, "timeout", 15*time.Second, "how long each node may take to answer")
	cmd.AddCommand(nodes, svc)
	return cmd
}

func (o *topOptions) validate() error {
	if o.output != "table" && o.output != "json" {
		return fmt.Errorf("-o %q: want table or json", o.output)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", o.timeout)
	}
	return nil
}

// topStatsResult is what the fan-out got: the nodes that answered, and why the others did not.
type topStatsResult struct {
	stats  []*nodeapi.NodeStats // sorted by node
	failed map[string]error
}

// err names every node that did not answer, in one line.
func (r topStatsResult) err() error {
	if len(r.failed) == 0 {
		return nil
	}
	names := make([]string, 0, len(r.failed))
	for n := range r.failed {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Errorf("no stats from %d node(s): %s", len(names), strings.Join(names, ", "))
}

// topStatsSource is what top needs of the API client.
type topStatsSource interface {
	Stats(ctx context.Context, node, service string) (*nodeapi.NodeStats, error)
}

var _ topStatsSource = (*client.Client)(nil)

// topFetchStats asks every node at once, each within timeout.
func topFetchStats(ctx context.Context, c topStatsSource, nodes []string, service string, timeout time.Duration) topStatsResult {
	res := topStatsResult{failed: map[string]error{}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			s, err := c.Stats(nctx, n, service)
			if err == nil && s.Node != n {
				err = fmt.Errorf("answered as node %q", s.Node)
			}
			if err != nil && nctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %s", timeout)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed[n] = err
				return
			}
			res.stats = append(res.stats, s)
		}()
	}
	wg.Wait()
	sort.Slice(res.stats, func(i, j int) bool { return res.stats[i].Node < res.stats[j].Node })
	return res
}

// topReportUnreachable names each node that did not answer on w, one per line.
func topReportUnreachable(w io.Writer, r topStatsResult) {
	names := make([]string, 0, len(r.failed))
	for n := range r.failed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "node %s: %v\n", n, r.failed[n])
	}
}

// topNodes is the ctl top nodes table's data.
type topNode struct {
	Node          string  `json:"node"`
	CPUPercent    float64 `json:"cpuPercent"`    // of the node's CPUs; -1 unknown
	MemoryBytes   uint64  `json:"memoryBytes"`   // the replicas'
	MemoryPercent float64 `json:"memoryPercent"` // of the node's memory; -1 unknown
	Replicas      int     `json:"replicas"`
	CPUs          int     `json:"cpus"`
	NodeMemory    int64   `json:"nodeMemoryBytes"`
}

// topNodeRow folds one node's answer into its row.
func topNodeRow(s *nodeapi.NodeStats) topNode {
	row := topNode{Node: s.Node, MemoryBytes: s.ReplicasMemoryBytes, Replicas: len(s.Replicas), CPUs: s.CPUs, NodeMemory: s.MemoryBytes,
		CPUPercent: -1, MemoryPercent: -1}
	if s.CPUs > 0 {
		row.CPUPercent = s.ReplicasCPUPercent / float64(s.CPUs)
	}
	if s.MemoryBytes > 0 {
		row.MemoryPercent = float64(s.ReplicasMemoryBytes) / float64(s.MemoryBytes) * 100
	}
	return row
}

func topPercent(p float64) string {
	if p < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f%%", p)
}

func (a *app) runTopNodes(ctx context.Context, o *topOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	nodes, err := nodeNames(ctx, c)
	if err != nil {
		return err
	}
	res := topFetchStats(ctx, c, nodes, "", o.timeout)
	rows := make([]topNode, 0, len(res.stats))
	for _, s := range res.stats {
		rows = append(rows, topNodeRow(s))
	}
	topReportUnreachable(a.env.Err, res)
	if o.output == "json" {
		enc := json.NewEncoder(a.env.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
		return res.err()
	}
	tw := tabwriter.NewWriter(a.env.Out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCPU%\tMEMORY\tMEMORY%\tREPLICAS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Node, topPercent(r.CPUPercent), humanBytes(int64(r.MemoryBytes)), topPercent(r.MemoryPercent), r.Replicas)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return res.err()
}

// topReplica is one row of ctl top svc.
type topReplica struct {
	Service          string  `json:"service"`
	Index            int32   `json:"index"`
	Node             string  `json:"node"`
	Container        string  `json:"container"`
	CPUPercent       float64 `json:"cpuPercent"` // 100 = one CPU
	MemoryBytes      uint64  `json:"memoryBytes"`
	MemoryLimitBytes uint64  `json:"memoryLimitBytes"`
	Error            string  `json:"error,omitempty"`
}

// topReplicaRows flattens the nodes' answers, sorted by Service, index, node.
func topReplicaRows(stats []*nodeapi.NodeStats) []topReplica {
	rows := []topReplica{}
	for _, s := range stats {
		for _, r := range s.Replicas {
			rows = append(rows, topReplica{Service: r.Service, Index: r.Index, Node: s.Node, Container: r.Container,
				CPUPercent: r.CPUPercent, MemoryBytes: r.MemoryBytes, MemoryLimitBytes: r.MemoryLimitBytes, Error: r.Error})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return a.Node < b.Node
	})
	return rows
}

func (a *app) runTopServices(ctx context.Context, o *topOptions, name string) error {
	if err := o.validate(); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if name != "" {
		if _, err := c.Get(ctx, v1.KindService, name); err != nil {
			return err
		}
	}
	nodes, err := nodeNames(ctx, c)
	if err != nil {
		return err
	}
	res := topFetchStats(ctx, c, nodes, name, o.timeout)
	rows := topReplicaRows(res.stats)
	topReportUnreachable(a.env.Err, res)
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(a.env.Err, "%s-%d on node %s: %s\n", r.Service, r.Index, r.Node, r.Error)
		}
	}
	if o.output == "json" {
		enc := json.NewEncoder(a.env.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
		return res.err()
	}
	tw := tabwriter.NewWriter(a.env.Out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tNODE\tCPU%\tMEMORY\tMEM LIMIT")
	for _, r := range rows {
		cpu, mem, limit := fmt.Sprintf("%.1f%%", r.CPUPercent), humanBytes(int64(r.MemoryBytes)), humanBytes(int64(r.MemoryLimitBytes))
		if r.Error != "" {
			cpu, mem, limit = "?", "?", "?"
		}
		fmt.Fprintf(tw, "%s-%d\t%s\t%s\t%s\t%s\n", r.Service, r.Index, r.Node, cpu, mem, limit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 && len(res.failed) == 0 {
		if name != "" {
			fmt.Fprintf(a.env.Err, "services/%s has no running replica\n", name)
		} else {
			fmt.Fprintln(a.env.Err, "no running replicas")
		}
	}
	return res.err()
}
