package proxy

import (
	"fmt"
	"slices"
	"testing"
)

func TestOrder(t *testing.T) {
	ep := func(addr string, healthy, local bool, active int64) Candidate {
		return Candidate{Endpoint: Endpoint{Address: addr, Healthy: healthy, Local: local}, Active: active}
	}
	suspect := func(c Candidate) Candidate { c.Suspect = true; return c }
	tests := []struct {
		name  string
		cands []Candidate
		rr    uint64
		want  []string
	}{
		{name: "no endpoints", want: []string{}},
		{name: "none healthy", cands: []Candidate{ep("a:1", false, true, 0), ep("b:1", false, false, 0)}, want: []string{}},
		{name: "unhealthy never chosen, not even last", cands: []Candidate{ep("a:1", false, false, 0), ep("b:1", true, false, 9)}, want: []string{"b:1"}},
		{name: "unhealthy local skipped for a remote", cands: []Candidate{ep("local:1", false, true, 0), ep("r:1", true, false, 5)}, want: []string{"r:1"}},
		{name: "healthy local first even when busier", cands: []Candidate{ep("r1:1", true, false, 0), ep("local:1", true, true, 50), ep("r2:1", true, false, 1)}, want: []string{"local:1", "r1:1", "r2:1"}},
		{name: "two locals by least connections, then remotes", cands: []Candidate{ep("r:1", true, false, 0), ep("l1:1", true, true, 3), ep("l2:1", true, true, 1)}, want: []string{"l2:1", "l1:1", "r:1"}},
		{name: "remotes by least connections", cands: []Candidate{ep("a:1", true, false, 4), ep("b:1", true, false, 2), ep("c:1", true, false, 3)}, want: []string{"b:1", "c:1", "a:1"}},
		{name: "ties by address at rr 0, whatever the input order", cands: []Candidate{ep("c:1", true, false, 0), ep("a:1", true, false, 0), ep("b:1", true, false, 0)}, rr: 0, want: []string{"a:1", "b:1", "c:1"}},
		{name: "ties rotate with rr 1", cands: []Candidate{ep("c:1", true, false, 0), ep("a:1", true, false, 0), ep("b:1", true, false, 0)}, rr: 1, want: []string{"b:1", "c:1", "a:1"}},
		{name: "ties rotate with rr 2", cands: []Candidate{ep("c:1", true, false, 0), ep("a:1", true, false, 0), ep("b:1", true, false, 0)}, rr: 2, want: []string{"c:1", "a:1", "b:1"}},
		{name: "rr wraps modulo the tie", cands: []Candidate{ep("a:1", true, false, 0), ep("b:1", true, false, 0)}, rr: 5, want: []string{"b:1", "a:1"}},
		{name: "rotation only inside a tie", cands: []Candidate{ep("a:1", true, false, 1), ep("b:1", true, false, 1), ep("c:1", true, false, 0)}, rr: 1, want: []string{"c:1", "b:1", "a:1"}},
		{name: "suspect local goes after healthy remotes", cands: []Candidate{suspect(ep("local:1", true, true, 0)), ep("r:1", true, false, 7)}, want: []string{"r:1", "local:1"}},
		{name: "suspects keep their own order", cands: []Candidate{suspect(ep("s2:1", true, false, 0)), suspect(ep("s1:1", true, true, 3)), ep("ok:1", true, false, 0)}, want: []string{"ok:1", "s1:1", "s2:1"}},
		{name: "unhealthy suspect still left out", cands: []Candidate{suspect(ep("a:1", false, false, 0))}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.cands)
			idx := Order(tt.cands, tt.rr)
			got := []string{}
			for _, i := range idx {
				got = append(got, tt.cands[i].Address)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Order = %v, want %v", got, tt.want)
			}
			if !slices.Equal(before, tt.cands) {
				t.Errorf("Order modified its input")
			}
		})
	}
}

// Round robin over equal endpoints: consecutive rr values give each endpoint the first place
// equally often.
func TestOrderRoundRobinIsFair(t *testing.T) {
	var cands []Candidate
	for i := range 3 {
		cands = append(cands, Candidate{Endpoint: Endpoint{Address: fmt.Sprintf("e%d:1", i), Healthy: true}})
	}
	first := map[string]int{}
	for rr := range uint64(300) {
		first[cands[Order(cands, rr)[0]].Address]++
	}
	for _, c := range cands {
		if first[c.Address] != 100 {
			t.Errorf("%s first %d times of 300, want 100 (%v)", c.Address, first[c.Address], first)
		}
	}
}

func BenchmarkOrder(b *testing.B) {
	for _, n := range []int{3, 100} {
		cands := make([]Candidate, n)
		for i := range cands {
			cands[i] = Candidate{Endpoint: Endpoint{Address: fmt.Sprintf("10.0.0.%d:80", i), Healthy: i%7 != 0, Local: i == 1}, Active: int64(i % 3)}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := range b.N {
				Order(cands, uint64(i))
			}
		})
	}
}
