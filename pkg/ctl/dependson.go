package ctl

import (
	"sort"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// dependsOnCycles checks the Services of one apply together for spec.dependsOn cycles, before
// anything is sent: the API server sees one object at a time and checks each against what is
// stored, so a cycle made only of objects of this apply would otherwise be stored half-way.
func dependsOnCycles(items []item) []string {
	var svcs []*v1.Service
	for _, it := range items {
		if s, ok := it.obj.(*v1.Service); ok {
			svcs = append(svcs, s)
		}
	}
	cycles := v1.DependencyCycles(svcs)
	names := make([]string, 0, len(cycles))
	for n := range cycles {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, v1.ErrorList{cycles[n]}.ToAggregate("services", n).Error())
	}
	return out
}
