package ctl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// fakeStats answers per node: a NodeStats, an error, or nothing until ctx ends.
type fakeStats map[string]any

func (f fakeStats) Stats(ctx context.Context, node, _ string) (*nodeapi.NodeStats, error) {
	switch v := f[node].(type) {
	case *nodeapi.NodeStats:
		return v, nil
	case error:
		return nil, v
	default:
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

// TestTopFetchStatsNamesEveryNodeThatDidNotAnswer: nodes are asked at once; one that hangs is
// cut at the timeout (the fan-out does not wait for it longer), one that fails keeps its error,
// one that answers as another node is not trusted; the rest are returned sorted.
func TestTopFetchStatsNamesEveryNodeThatDidNotAnswer(t *testing.T) {
	src := fakeStats{
		"n2":    &nodeapi.NodeStats{Node: "n2"},
		"n1":    &nodeapi.NodeStats{Node: "n1"},
		"hangs": nil,
		"fails": errors.New("node fails (10.0.0.9:7480) cannot be reached: connection refused"),
		"liar":  &nodeapi.NodeStats{Node: "n1"},
	}
	start := time.Now()
	res := topFetchStats(context.Background(), src, []string{"n2", "hangs", "n1", "fails", "liar"}, "", 200*time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the fan-out took %s with a 200ms timeout", took)
	}
	if len(res.stats) != 2 || res.stats[0].Node != "n1" || res.stats[1].Node != "n2" {
		t.Fatalf("answers %+v", res.stats)
	}
	if got := res.failed["hangs"]; got == nil || got.Error() != "no answer within 200ms" {
		t.Errorf("hangs: %v", got)
	}
	if got := res.failed["fails"]; got == nil || !strings.Contains(got.Error(), "connection refused") {
		t.Errorf("fails: %v", got)
	}
	if got := res.failed["liar"]; got == nil || !strings.Contains(got.Error(), `answered as node "n1"`) {
		t.Errorf("liar: %v", got)
	}
	if err := res.err(); err == nil || err.Error() != "no stats from 3 node(s): fails, hangs, liar" {
		t.Errorf("err: %v", err)
	}
	var b strings.Builder
	topReportUnreachable(&b, res)
	if strings.Count(b.String(), "\n") != 3 || !strings.HasPrefix(b.String(), "node fails: ") {
		t.Errorf("stderr:\n%s", b.String())
	}
}

// TestTopRows: a node's CPU% and MEMORY% are its replicas' share of the node's CPUs and
// memory, unknown ("?") when the engine did not say; replica rows sort by Service and index.
func TestTopRows(t *testing.T) {
	r := topNodeRow(&nodeapi.NodeStats{Node: "n1", CPUs: 4, MemoryBytes: 8 << 30, ReplicasCPUPercent: 150, ReplicasMemoryBytes: 2 << 30,
		Replicas: make([]nodeapi.ReplicaStats, 3)})
	if r.CPUPercent != 37.5 || r.MemoryPercent != 25 || r.Replicas != 3 || topPercent(r.CPUPercent) != "37.5%" {
		t.Fatalf("row %+v", r)
	}
	if u := topNodeRow(&nodeapi.NodeStats{Node: "n2", ReplicasCPUPercent: 10}); topPercent(u.CPUPercent) != "?" || topPercent(u.MemoryPercent) != "?" {
		t.Fatalf("unknown host: %+v", u)
	}
	rows := topReplicaRows([]*nodeapi.NodeStats{
		{Node: "b", Replicas: []nodeapi.ReplicaStats{{Service: "web", Index: 1}, {Service: "api", Index: 0}}},
		{Node: "a", Replicas: []nodeapi.ReplicaStats{{Service: "web", Index: 0}, {Service: "web", Index: 1}}},
	})
	var got []string
	for _, r := range rows {
		got = append(got, r.Service+"-"+string(rune('0'+r.Index))+"@"+r.Node)
	}
	if strings.Join(got, " ") != "api-0@b web-0@a web-1@a web-1@b" {
		t.Fatalf("rows %v", got)
	}
}
