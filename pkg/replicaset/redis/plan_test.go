package redis

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func mv(i int, role string, master int, offset, keys int64) memberView {
	m := memberView{Name: fmt.Sprintf("db-%d", i), Index: i, Host: fmt.Sprintf("db-%d.db", i), Port: 6379,
		DialHost: fmt.Sprintf("10.0.0.%d", i+1), Ready: true, Reachable: role != "", Role: role, Offset: offset, Keys: keys}
	if role == "slave" {
		m.MasterHost, m.MasterPort, m.LinkUp = fmt.Sprintf("db-%d.db", master), 6379, true
	}
	return m
}

func sv(i int, master int) sentinelView {
	s := sentinelView{Name: fmt.Sprintf("s-%d", i), Host: fmt.Sprintf("s-%d.s", i), Port: 26379, Ready: true, Reachable: true}
	if master >= 0 {
		s.Monitoring, s.MasterHost, s.MasterPort, s.Flags = true, fmt.Sprintf("db-%d.db", master), 6379, "master"
	}
	return s
}

func down(s sentinelView) sentinelView { s.Reachable, s.Monitoring = false, false; return s }

func steps(p planOutput, ms []memberView, ss []sentinelView) string {
	var out []string
	for _, st := range p.Steps {
		switch st.Kind {
		case stepPromote:
			out = append(out, "promote "+ms[st.Member].Name)
		case stepReplicaOf:
			out = append(out, "replicaof "+ms[st.Member].Name+" "+ms[st.Master].Name)
		case stepMonitor:
			out = append(out, "monitor "+ss[st.Sentinel].Name+" "+ms[st.Master].Name)
		case stepReset:
			out = append(out, "reset "+ss[st.Sentinel].Name)
		case stepFailover:
			out = append(out, "failover "+ss[st.Sentinel].Name)
		}
	}
	return strings.Join(out, "; ")
}

func TestPlan(t *testing.T) {
	now := time.Unix(1000, 0)
	healthy := func() []memberView {
		return []memberView{mv(0, "master", 0, 100, 5), mv(1, "slave", 0, 100, 5), mv(2, "slave", 0, 100, 5)}
	}
	three := func(m int) []sentinelView { return []sentinelView{sv(0, m), sv(1, m), sv(2, m)} }
	tests := []struct {
		name      string
		members   []memberView
		sentinels []sentinelView
		last      string
		lastReset time.Time
		primary   string
		agreed    bool
		mode      mode
		steps     string
	}{
		{name: "fresh set: index 0 master", primary: "db-0", mode: modeColdStart,
			members:   []memberView{mv(0, "master", 0, 0, 0), mv(1, "master", 0, 0, 0), mv(2, "master", 0, 0, 0)},
			sentinels: three(-1),
			steps:     "replicaof db-1 db-0; replicaof db-2 db-0; monitor s-0 db-0; monitor s-1 db-0; monitor s-2 db-0"},
		{name: "fresh set waits for every member", mode: modeWaitingMembers,
			members:   []memberView{mv(0, "", 0, 0, 0), mv(1, "master", 0, 0, 0), mv(2, "master", 0, 0, 0)},
			sentinels: three(-1)},
		{name: "healthy set: sentinel majority and ROLE agree", members: healthy(), sentinels: three(0),
			primary: "db-0", agreed: true, mode: modeAgreed},
		{name: "never picks a master while sentinels monitor: master dead, failover pending",
			members:   []memberView{mv(0, "", 0, 0, 0), mv(1, "slave", 0, 90, 5), mv(2, "slave", 0, 100, 5)},
			sentinels: []sentinelView{down(sv(0, 0)), sv(1, 0), sv(2, 0)},
			primary:   "db-0", mode: modeRoleMismatch},
		{name: "after Sentinel's failover the new master is reported",
			members:   []memberView{mv(0, "", 0, 0, 0), mv(1, "master", 0, 120, 5), mv(2, "slave", 1, 120, 5)},
			sentinels: []sentinelView{down(sv(0, 0)), sv(1, 1), sv(2, 1)},
			primary:   "db-1", agreed: true, mode: modeAgreed},
		{name: "sentinels split during a failover: wait",
			members:   []memberView{mv(0, "", 0, 0, 0), mv(1, "master", 0, 120, 5), mv(2, "slave", 0, 120, 5)},
			sentinels: []sentinelView{down(sv(0, 0)), sv(1, 1), sv(2, 0)},
			mode:      modeSentinelsSplit, primary: "db-0"},
		{name: "no sentinel quorum: nothing done",
			members:   []memberView{mv(0, "master", 0, 100, 5), mv(1, "", 0, 0, 0), mv(2, "", 0, 0, 0)},
			sentinels: []sentinelView{sv(0, 0), down(sv(1, 0)), down(sv(2, 0))},
			primary:   "db-0", mode: modeNoQuorum},
		{name: "no sentinel quorum and no sentinel state: nothing done (MONITOR would reach a minority)",
			members:   []memberView{mv(0, "master", 0, 100, 5), mv(1, "master", 0, 0, 0), mv(2, "", 0, 0, 0)},
			sentinels: []sentinelView{sv(0, -1), down(sv(1, 0)), down(sv(2, 0))},
			mode:      modeNoQuorum},
		{name: "restarted sentinel learns the agreed master", members: healthy(),
			sentinels: []sentinelView{sv(0, 0), sv(1, -1), sv(2, 0)},
			primary:   "db-0", agreed: true, mode: modeAgreed, steps: "monitor s-1 db-0"},
		{name: "two of three sentinels restarted: the one left names a master that says so",
			members:   healthy(),
			sentinels: []sentinelView{sv(0, 0), sv(1, -1), sv(2, -1)},
			primary:   "db-0", mode: modeSentinelsSplit, steps: "monitor s-1 db-0; monitor s-2 db-0"},
		{name: "cold start: the sole master the others follow wins over the last recorded primary",
			members: healthy(), sentinels: three(-1), last: "db-2",
			primary: "db-0", mode: modeColdStart, steps: "monitor s-0 db-0; monitor s-1 db-0; monitor s-2 db-0"},
		{name: "cold start after a full restart: the last recorded primary if alive",
			members:   []memberView{mv(0, "master", 0, 300, 9), mv(1, "master", 0, 100, 9), mv(2, "master", 0, 200, 9)},
			sentinels: three(-1), last: "db-1",
			primary: "db-1", mode: modeColdStart,
			steps: "replicaof db-0 db-1; replicaof db-2 db-1; monitor s-0 db-1; monitor s-1 db-1; monitor s-2 db-1"},
		{name: "cold start: last primary gone, the highest offset",
			members: func() []memberView {
				m := []memberView{mv(0, "", 0, 0, 0), mv(1, "master", 0, 100, 9), mv(2, "master", 0, 200, 9)}
				m[0].Ready = false
				return m
			}(),
			sentinels: three(-1), last: "db-0",
			primary: "db-2", mode: modeColdStart,
			steps: "replicaof db-1 db-2; monitor s-0 db-2; monitor s-1 db-2; monitor s-2 db-2"},
		{name: "cold start: last primary runs but does not answer yet: wait",
			members:   []memberView{mv(0, "", 0, 0, 0), mv(1, "master", 0, 100, 9), mv(2, "master", 0, 200, 9)},
			sentinels: three(-1), last: "db-0", mode: modeWaitingMembers},
		{name: "cold start: an empty member never wins while another has data, even the last primary",
			members: func() []memberView {
				m := []memberView{mv(0, "master", 0, 0, 0), mv(1, "master", 0, 50, 3), mv(2, "master", 0, 0, 0)}
				m[2].EmptyData, m[2].Offset = true, 900 // a fresh volume, whatever its offset says
				return m
			}(),
			sentinels: three(-1), last: "db-0",
			primary: "db-1", mode: modeColdStart,
			steps: "replicaof db-0 db-1; replicaof db-2 db-1; monitor s-0 db-1; monitor s-1 db-1; monitor s-2 db-1"},
		{name: "sentinel answer by IP maps to the member",
			members: healthy(),
			sentinels: func() []sentinelView {
				s := three(0)
				for i := range s {
					s[i].MasterHost = "10.0.0.1"
				}
				return s
			}(),
			primary: "db-0", agreed: true, mode: modeAgreed},
		{name: "sentinels name a stranger", members: healthy(),
			sentinels: func() []sentinelView {
				s := three(0)
				for i := range s {
					s[i].MasterHost = "old.example"
				}
				return s
			}(),
			mode: modeUnknownMaster},
		{name: "stale replica remembered: reset one sentinel",
			members: healthy(),
			sentinels: func() []sentinelView {
				s := three(0)
				for i := range s {
					s[i].Replicas = []string{"db-1.db:6379", "db-2.db:6379", "db-3.db:6379"}
				}
				return s
			}(),
			primary: "db-0", agreed: true, mode: modeAgreed, steps: "reset s-0"},
		{name: "stale replica, reset spaced by the interval",
			members: healthy(), lastReset: now.Add(-time.Second),
			sentinels: func() []sentinelView {
				s := three(0)
				s[1].Replicas = []string{"db-9.db:6379"}
				return s
			}(),
			primary: "db-0", agreed: true, mode: modeAgreed},
		{name: "sentinel remembered twice: reset",
			members: healthy(),
			sentinels: func() []sentinelView {
				s := three(0)
				s[2].Sentinels = []string{"s-0.s:26379", "s-1.s:26379", "s-1.s:26379"}
				return s
			}(),
			primary: "db-0", agreed: true, mode: modeAgreed, steps: "reset s-2"},
		{name: "draining master: SENTINEL FAILOVER, never REPLICAOF",
			members:   func() []memberView { m := healthy(); m[0].Draining = true; return m }(),
			sentinels: three(0),
			primary:   "db-0", agreed: true, mode: modeFailoverRequested, steps: "failover s-0"},
		{name: "draining master without a healthy replica: no failover",
			members: func() []memberView {
				m := healthy()
				m[0].Draining = true
				m[1].LinkUp, m[2].Reachable, m[2].Role = false, false, ""
				return m
			}(),
			sentinels: three(0),
			primary:   "db-0", agreed: true, mode: modeAgreed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(planInput{Members: tt.members, Sentinels: tt.sentinels, LastPrimary: tt.last, Now: now,
				LastReset: tt.lastReset, ResetInterval: 30 * time.Second, FailoverInterval: 10 * time.Second})
			got := ""
			if p.Primary >= 0 {
				got = tt.members[p.Primary].Name
			}
			if got != tt.primary || p.Agreed != tt.agreed || p.Mode != tt.mode {
				t.Errorf("primary %q agreed %v mode %s (%s), want %q %v %s", got, p.Agreed, p.Mode, p.Message, tt.primary, tt.agreed, tt.mode)
			}
			if s := steps(p, tt.members, tt.sentinels); s != tt.steps {
				t.Errorf("steps\n got %q\nwant %q", s, tt.steps)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	var v memberView
	if err := parseRole([]any{"slave", "db-0.db", int64(6379), "connected", int64(42)}, &v); err != nil {
		t.Fatal(err)
	}
	if v.Role != "slave" || v.MasterHost != "db-0.db" || v.MasterPort != 6379 || !v.LinkUp || v.Offset != 42 {
		t.Fatalf("replica: %+v", v)
	}
	v = memberView{}
	if err := parseRole([]any{"master", int64(7), []any{}}, &v); err != nil || v.Role != "master" || v.Offset != 7 {
		t.Fatalf("master: %+v %v", v, err)
	}
	if err := parseRole([]any{"sentinel", []any{}}, &v); err == nil {
		t.Fatal("a sentinel's ROLE must not pass for a member")
	}
	if err := parseRole("nonsense", &v); err == nil {
		t.Fatal("want error")
	}
}

func TestMemberStatuses(t *testing.T) {
	ms := []memberView{mv(0, "master", 0, 9, 1), mv(1, "master", 0, 0, 0), mv(2, "slave", 1, 9, 1), mv(3, "slave", 0, 9, 1), mv(4, "", 0, 0, 0)}
	ms[3].LinkUp = false
	ms[4].Ready = false
	got := memberStatuses(ms, planOutput{Primary: 0, Agreed: true})
	want := []string{"master/healthy", "master/diverged", "replica/diverged", "replica/syncing", "unknown/notReady"}
	for i, g := range got {
		if s := g.Role + "/" + g.Health; s != want[i] {
			t.Errorf("member %d: %s, want %s", i, s, want[i])
		}
	}
}
