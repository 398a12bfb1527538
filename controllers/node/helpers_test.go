package node

import "sort"

// count returns the number of probes (for tests).
func (p *prober) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.probes)
}

// pulling returns the images being pulled (for tests).
func (p *puller) pulling() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.active))
	for ref := range p.active {
		out = append(out, ref)
	}
	sort.Strings(out)
	return out
}
