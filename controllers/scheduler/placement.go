package scheduler

import (
	"fmt"
	"strings"
)

// pickNode returns the eligible node with the fewest replicas of this Service (then the fewest
// of others, then one holding the image, then by name), or "" and why none fits.
func pickNode(nodes []NodeInfo, eligible func(NodeInfo) bool, counts, load map[string]int, holders map[string]bool, maxPerNode int32) (string, string) {
	best := ""
	anyEligible := false
	for _, n := range nodes {
		if !eligible(n) {
			continue
		}
		anyEligible = true
		if maxPerNode > 0 && counts[n.Name] >= int(maxPerNode) {
			continue
		}
		if best == "" || counts[n.Name] < counts[best] ||
			(counts[n.Name] == counts[best] && load[n.Name] < load[best]) {
			best = n.Name
			continue
		}
		if counts[n.Name] != counts[best] || load[n.Name] != load[best] {
			continue
		}
		// Otherwise equal: a holder of the image first, then by name.
		if holders[n.Name] != holders[best] {
			if holders[n.Name] {
				best = n.Name
			}
			continue
		}
		if n.Name < best {
			best = n.Name
		}
	}
	switch {
	case best != "":
		return best, ""
	case anyEligible:
		return "", fmt.Sprintf("every eligible node already runs maxPerNode=%d", maxPerNode)
	default:
		return "", "no ready, schedulable node matches placement.nodeSelector"
	}
}

// rebalanceVictim returns the index in current of a replica to move off the most crowded
// eligible node, or -1 when the spread is within one.
func rebalanceVictim(current []slot, nodes []NodeInfo, eligible func(NodeInfo) bool, maxPerNode int32) int {
	counts := map[string]int{}
	for _, s := range current {
		counts[s.a.Node]++
	}
	minNode, maxNode := "", ""
	for _, n := range nodes {
		if !eligible(n) {
			continue
		}
		c := counts[n.Name]
		if minNode == "" || c < counts[minNode] {
			minNode = n.Name
		}
		if maxNode == "" || c > counts[maxNode] {
			maxNode = n.Name
		}
	}
	if minNode == "" || counts[maxNode]-counts[minNode] <= 1 {
		return -1
	}
	if maxPerNode > 0 && counts[minNode] >= int(maxPerNode) {
		return -1
	}
	victim := -1
	for i, s := range current {
		if s.a.Node == maxNode && (victim < 0 || s.a.Index > current[victim].a.Index) {
			victim = i
		}
	}
	return victim
}

// hostPortWhy says why no node could take a replica of a Service with host ports: per
// eligible node, who holds the port there.
func hostPortWhy(in Input, eligible func(NodeInfo) bool, portHolder func(string) string, counts map[string]int) string {
	var parts []string
	for _, n := range in.Nodes {
		if !eligible(n) {
			continue
		}
		switch who := portHolder(n.Name); {
		case who != "":
			parts = append(parts, n.Name+": "+who)
		case counts[n.Name] > 0:
			parts = append(parts, n.Name+": a replica of this Service holds them")
		}
	}
	if len(parts) == 0 {
		return "no ready, schedulable node matches placement.nodeSelector"
	}
	return fmt.Sprintf("host ports %s are taken on every eligible node (%s)", strings.Join(in.HostPorts, ", "), strings.Join(parts, "; "))
}
