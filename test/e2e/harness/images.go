package harness

// The workload images: loaded into the first node, fetched by the others through the agents.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// imagesViaAgents says whether the workload images reach the nodes after the first through
// the agents (issue 22, docs/e2e.md): not with independent one-node clusters (no peers) nor
// with another agent binary (an older release has no POST /node/{node}/images/pull), which
// load them into every node by hand.
func (c *Cluster) imagesViaAgents() bool {
	return !c.opts.MemoryStore && c.opts.AgentBinary == "" && len(c.Nodes) > 1
}

// distributeImages makes every node after the first fetch the workload images from the
// agents (`ctl image pull IMAGE --to n2,n3,...`: each node's pull order, which finds them on
// n1), so that every node holds every image before a scenario starts, even one that kills
// n1. A node that cannot ask its peers yet (gossip has not shown it n1's API address) fails
// its pull and is asked again. An image pulled from a registry instead is an error: there is
// none, and the harness must not depend on one.
func (c *Cluster) distributeImages(ctx context.Context, max time.Duration) error {
	t0 := time.Now()
	var to []string
	for _, n := range c.Nodes[1:] {
		to = append(to, n.Name)
	}
	errs := make(chan error, len(c.Art.Images))
	for _, img := range c.Art.Images {
		go func() {
			var out string
			err := poll(ctx, max, 500*time.Millisecond, func() error {
				var err error
				out, err = c.Ctl(ctx, c.Nodes[0], "image", "pull", img, "--to", strings.Join(to, ","))
				return err
			}, func(err error) error {
				return fmt.Errorf("harness: nodes %v could not fetch %s through the agents within %s: %w", to, img, max, err)
			})
			if err == nil && strings.Contains(out, "from its registry") {
				err = fmt.Errorf("harness: %s came from a registry, not from %s:\n%s", img, c.Nodes[0].Name, out)
			}
			errs <- err
		}()
	}
	var all []error
	for range c.Art.Images {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	c.logf("harness: %d images from %s on %v through the agents (ctl image pull) in %s", len(c.Art.Images), c.Nodes[0].Name, to, time.Since(t0).Round(time.Millisecond))
	return nil
}
