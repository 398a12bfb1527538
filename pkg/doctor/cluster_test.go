package doctor

import (
	"errors"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// answer is node's answer, its clock off the asker's by skew, with a 10ms round trip.
func answer(node string, skew time.Duration, raft *nodeapi.RaftInfo, key string, alive ...string) Answer {
	sent := t0
	recv := t0.Add(10 * time.Millisecond)
	return Answer{Node: node, Sent: sent, Received: recv, Diag: &nodeapi.Diagnostics{
		Node: node, Time: t0.Add(5 * time.Millisecond).Add(skew), Raft: raft,
		Gossip: nodeapi.GossipInfo{PrimaryKey: key, Keys: 1, Alive: alive},
	}}
}

func down(node string) Answer {
	return Answer{Node: node, Sent: t0, Received: t0.Add(time.Second), Err: errors.New("node n3 (10.0.0.3:7480) cannot be reached: connection refused")}
}

func follower(leader string) *nodeapi.RaftInfo {
	return &nodeapi.RaftInfo{Role: "follower", Leader: leader, Voters: []string{"n1", "n2", "n3"}}
}

func TestClockSkew(t *testing.T) {
	cases := []struct {
		name    string
		answers []Answer
		want    want
	}{
		{"in step", []Answer{answer("n1", 0, nil, ""), answer("n2", 100*time.Millisecond, nil, "")}, want{OK, "100ms between n2 and n1"}},
		{"two seconds", []Answer{answer("n1", 0, nil, ""), answer("n2", -2*time.Second, nil, ""), answer("n3", 0, nil, "")}, want{Warn, "2s between n1 and n2"}},
		{"a minute", []Answer{answer("n1", time.Minute, nil, ""), answer("n2", 0, nil, "")}, want{Fail, "1m0s between n1 and n2"}},
		{"a down node is left out", []Answer{answer("n1", 0, nil, ""), down("n3")}, want{OK, "1 member answered"}},
	}
	for _, c := range cases {
		expect(t, c.name, ClockSkew(c.answers), c.want)
	}
	// The round trip is the error bar: a 1.2s spread measured over 1s round trips is not judged
	// as skew beyond the bar.
	slow := []Answer{answer("n1", 0, nil, ""), answer("n2", 1200*time.Millisecond, nil, "")}
	for i := range slow {
		slow[i].Received = slow[i].Sent.Add(time.Second)
		slow[i].Diag.Time = slow[i].Sent.Add(500 * time.Millisecond).Add(time.Duration(i) * 1200 * time.Millisecond)
	}
	expect(t, "within the error bar", ClockSkew(slow), want{OK, "±1s"})
}

func TestQuorum(t *testing.T) {
	leader := &nodeapi.RaftInfo{Role: "leader", Leader: "n1", Voters: []string{"n1", "n2", "n3"}}
	cases := []struct {
		name    string
		answers []Answer
		quorum  want
		voters  want
	}{
		{"all three", []Answer{answer("n1", 0, leader, ""), answer("n2", 0, follower("n1"), ""), answer("n3", 0, follower("n1"), "")},
			want{OK, "leader n1, seen by 3 of 3 voters"}, want{OK, "survives the loss of 1"}},
		{"one down", []Answer{answer("n1", 0, leader, ""), answer("n2", 0, follower("n1"), ""), down("n3")},
			want{OK, "not answering: n3"}, want{OK, "3 (n1, n2, n3)"}},
		{"quorum lost", []Answer{answer("n1", 0, follower(""), ""), down("n2"), down("n3")},
			want{Fail, "no leader seen by a majority: 0 of 3"}, want{OK, "3"}},
		{"split views", []Answer{answer("n1", 0, follower("n1"), ""), answer("n2", 0, follower("n2"), ""), down("n3")},
			want{Fail, "1 of 3 voters agree (2 needed)"}, want{OK, "3"}},
		{"one voter", []Answer{answer("n1", 0, &nodeapi.RaftInfo{Role: "leader", Leader: "n1", Voters: []string{"n1"}}, "")},
			want{OK, "seen by 1 of 1"}, want{Warn, "losing it stops changes"}},
		{"two voters", []Answer{answer("n1", 0, &nodeapi.RaftInfo{Role: "leader", Leader: "n1", Voters: []string{"n1", "n2"}}, "")},
			want{Fail, "1 of 2 voters agree (2 needed)"}, want{Warn, "survives the loss of 0"}},
	}
	for _, c := range cases {
		got := Quorum(c.answers)
		if len(got) != 2 {
			t.Fatalf("%s: %+v", c.name, got)
		}
		expect(t, c.name+" quorum", got[0], c.quorum)
		expect(t, c.name+" voters", got[1], c.voters)
	}
	got := Quorum([]Answer{answer("n1", 0, nil, "")})
	expect(t, "in-memory", got[0], want{Warn, "no member reports raft"})
}

func TestGossipAgreement(t *testing.T) {
	all := []string{"n1", "n2", "n3"}
	same := []Answer{answer("n1", 0, nil, "k1", all...), answer("n2", 0, nil, "k1", all...), answer("n3", 0, nil, "k1", all...)}
	expect(t, "same key", GossipKeys(same), want{OK, "k1 on n1,n2,n3"})
	expect(t, "all see all", GossipMembership(same, all), want{OK, "3 answering members each see all 3 nodes"})

	odd := []Answer{answer("n1", 0, nil, "k1", "n1", "n2"), answer("n2", 0, nil, "k1", "n1", "n2"), answer("n3", 0, nil, "k2", "n3")}
	expect(t, "odd key", GossipKeys(odd), want{Fail, "k1 on n1,n2; k2 on n3"})
	expect(t, "cut off", GossipMembership(odd, all), want{Warn, "n1 does not see n3; n2 does not see n3; n3 does not see n1,n2"})
}

func TestReachable(t *testing.T) {
	expect(t, "down", Reachable(down("n3")), want{Fail, "connection refused"})
	expect(t, "up", Reachable(answer("n1", 0, nil, "")), want{OK, "answered in 10ms"})
}

func TestWorst(t *testing.T) {
	cs := []nodeapi.Check{{Status: OK}, {Status: Warn}}
	if Worst(cs) != Warn {
		t.Error("OK+WARN is not WARN")
	}
	if Worst(append(cs, nodeapi.Check{Status: Fail})) != Fail {
		t.Error("with a FAIL is not FAIL")
	}
}
