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
	"github.com/constellation-sh/constellation/pkg/doctor"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// doctorClient is what `ctl doctor` needs of the API (*client.Client).
type doctorClient interface {
	List(ctx context.Context, kind, selector string) (*client.ListResult, error)
	ObservedNodes(ctx context.Context) ([]client.ObservedNode, error)
	Diagnostics(ctx context.Context, node string) (*nodeapi.Diagnostics, error)
}

var _ doctorClient = (*client.Client)(nil)

// doctorReport is what `ctl doctor` prints (-o json prints it as is).
type doctorReport struct {
	Cluster []nodeapi.Check `json:"cluster"`
	Nodes   []doctorNode    `json:"nodes"`
}

type doctorNode struct {
	Node   string          `json:"node"`
	Checks []nodeapi.Check `json:"checks"`
}

func (r doctorReport) all() []nodeapi.Check {
	out := append([]nodeapi.Check(nil), r.Cluster...)
	for _, n := range r.Nodes {
		out = append(out, n.Checks...)
	}
	return out
}

func (a *app) doctorCommand() *cobra.Command {
	var (
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the cluster and every node: Docker, ports, quorum, clocks, gossip, Traefik, DNS, disk, mesh DNS, certificates",
		Long: "doctor asks every node's agent for its checks (concurrently, each within --timeout), adds the\n" +
			"cluster-wide ones (quorum, voters, clock skew, gossip key and membership) and prints one line\n" +
			"per check with OK, WARN or FAIL and a hint. It exits 1 when any check FAILs; a node that does\n" +
			"not answer is a FAIL. See docs/doctor.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %s: want table or json", output)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rep := runDoctor(cmd.Context(), c, timeout, a.env.Now)
			if output == "json" {
				enc := json.NewEncoder(a.env.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printDoctor(a.env.Out, rep)
			}
			var failed []string
			for _, c := range rep.Cluster {
				if c.Status == nodeapi.StatusFail {
					failed = append(failed, "cluster "+c.Name)
				}
			}
			for _, n := range rep.Nodes {
				for _, c := range n.Checks {
					if c.Status == nodeapi.StatusFail {
						failed = append(failed, n.Node+" "+c.Name)
					}
				}
			}
			if len(failed) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("doctor: %d check(s) failed: %s", len(failed), strings.Join(failed, ", "))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long each node may take to answer")
	return cmd
}

// doctorNodes lists the cluster's nodes: the Node objects, plus any node gossip sees alive that
// has none yet. Without a quorum the Node objects may not be readable; gossip's view still is.
func doctorNodes(ctx context.Context, c doctorClient) ([]string, []nodeapi.Check) {
	set := map[string]bool{}
	var checks []nodeapi.Check
	l, listErr := c.List(ctx, v1.KindNode, "")
	if listErr == nil {
		for _, o := range l.Items {
			set[o.GetMetadata().Name] = true
		}
	}
	obs, obsErr := c.ObservedNodes(ctx)
	if obsErr == nil {
		for _, n := range obs {
			// A dead node without a Node object is one that was removed (gossip remembers it
			// for a while); without the Node objects every node gossip knows is asked.
			if n.Alive || listErr != nil {
				set[n.Name] = true
			}
		}
	}
	if listErr != nil {
		checks = append(checks, nodeapi.Check{Name: "nodes", Status: nodeapi.StatusFail,
			Message: fmt.Sprintf("list Node objects: %v", listErr),
			Hint:    "the agent ctl talks to cannot read the store (no quorum?): nodes are taken from its gossip view"})
	}
	if listErr != nil && obsErr != nil {
		checks = append(checks, nodeapi.Check{Name: "gossip view", Status: nodeapi.StatusFail,
			Message: fmt.Sprintf("read the agent's gossip view: %v", obsErr), Hint: "check --server and the token"})
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, checks
}

// runDoctor asks every node concurrently and adds the cluster-wide checks.
func runDoctor(ctx context.Context, c doctorClient, timeout time.Duration, now func() time.Time) doctorReport {
	if now == nil {
		now = time.Now
	}
	nodes, listChecks := doctorNodes(ctx, c)
	answers := make([]doctor.Answer, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			ans := doctor.Answer{Node: n, Sent: now()}
			ans.Diag, ans.Err = c.Diagnostics(nctx, n)
			ans.Received = now()
			if ans.Err == nil && ans.Diag.Node != n {
				ans.Err = fmt.Errorf("answered as node %q", ans.Diag.Node)
				ans.Diag = nil
			}
			answers[i] = ans
		}()
	}
	wg.Wait()
	rep := doctorReport{Cluster: append(listChecks, doctor.Cluster(answers, nodes)...)}
	for _, ans := range answers {
		dn := doctorNode{Node: ans.Node, Checks: []nodeapi.Check{doctor.Reachable(ans)}}
		if ans.Diag != nil {
			dn.Checks = append(dn.Checks, ans.Diag.Checks...)
		}
		rep.Nodes = append(rep.Nodes, dn)
	}
	return rep
}

// printDoctor prints the checks grouped: the cluster first, then each node; a hint goes on the
// line under its check.
func printDoctor(w io.Writer, rep doctorReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	group := func(title string, cs []nodeapi.Check) {
		fmt.Fprintln(tw, title) // no tab: each group aligns by itself
		for _, c := range cs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Status, c.Name, flatten(c.Message))
			if c.Hint != "" && c.Status != nodeapi.StatusOK {
				fmt.Fprintf(tw, "  \t\thint: %s\n", flatten(c.Hint))
			}
		}
	}
	group("CLUSTER", rep.Cluster)
	for _, n := range rep.Nodes {
		group("NODE "+n.Node, n.Checks)
	}
	_ = tw.Flush()
	counts := map[nodeapi.CheckStatus]int{}
	all := rep.all()
	for _, c := range all {
		counts[c.Status]++
	}
	fmt.Fprintf(w, "%d checks: %d OK, %d WARN, %d FAIL\n", len(all), counts[nodeapi.StatusOK], counts[nodeapi.StatusWarn], counts[nodeapi.StatusFail])
}

// flatten keeps a message on one line of the table.
func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }
