// Data members: reading one (ROLE, INFO replication), configuring it (announce address, masterauth,
// min-replicas), and carrying out a planned step (REPLICAOF).

package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// readMember reads ROLE and DBSIZE and, once per server run (and settings change), applies the
// member settings: replica-announce-ip/port (the mesh name), masterauth, min-replicas-*.
func (e *Engine) readMember(ctx context.Context, m replicaset.Member, set settings) memberView {
	v := memberView{Name: m.Name, Index: m.Index, Host: m.Host, Port: m.Port, DialHost: dialHost(m.Dial),
		Ready: m.Ready, Draining: m.Draining, EmptyData: m.EmptyData}
	if !m.Ready || m.Dial == "" {
		return v
	}
	c := e.client(m.Dial, set.password)
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	pipe := c.Pipeline()
	info := pipe.Info(ctx, "server")
	role := pipe.Do(ctx, "ROLE")
	size := pipe.DBSize(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		e.log.Debug("member does not answer", "member", m.Name, "addr", m.Dial, "err", err)
		return v
	}
	if err := parseRole(role.Val(), &v); err != nil {
		e.log.Warn("member's ROLE unreadable", "member", m.Name, "err", err)
		return v
	}
	v.Reachable = true
	v.Keys = size.Val()
	runID := infoField(info.Val(), "run_id")
	want := runID + "|" + m.Host + "|" + strconv.Itoa(m.Port) + "|" + set.fingerprint()
	e.mu.Lock()
	done := e.configured[m.Dial] == want
	e.mu.Unlock()
	if !done {
		if err := e.configureMember(ctx, c, m, set, v); err != nil {
			e.log.Warn("configure member", "member", m.Name, "err", err)
		} else {
			e.mu.Lock()
			e.configured[m.Dial] = want
			e.mu.Unlock()
		}
	}
	return v
}

func (e *Engine) configureMember(ctx context.Context, c *goredis.Client, m replicaset.Member, set settings, v memberView) error {
	cur, err := c.ConfigGet(ctx, "replica-announce-ip").Result()
	if err != nil {
		return fmt.Errorf("CONFIG GET replica-announce-ip: %w", err)
	}
	announceChanged := cur["replica-announce-ip"] != m.Host
	args := []any{"CONFIG", "SET",
		"replica-announce-ip", m.Host, "replica-announce-port", strconv.Itoa(m.Port),
		"masterauth", set.password,
		"min-replicas-to-write", strconv.Itoa(int(set.minReplicas)),
		"min-replicas-max-lag", strconv.Itoa(int(set.minLag / time.Second)),
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("CONFIG SET: %w", err)
	}
	if announceChanged && v.Role == "slave" {
		// The master lists a replica under the address it announced when it connected: make
		// it reconnect (a partial resync) so that Sentinel learns the mesh name.
		if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
			return fmt.Errorf("CLIENT KILL TYPE master: %w", err)
		}
	}
	return nil
}

// apply carries out one step and returns the line that describes it.
func (e *Engine) apply(ctx context.Context, st step, ms []memberView, ss []sentinelView, d replicaset.Desired, set settings, now time.Time) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*e.opts.Timeout)
	defer cancel()
	switch st.Kind {
	case stepPromote:
		m := d.Members[st.Member]
		line := "REPLICAOF NO ONE on " + m.Name
		return line, e.client(m.Dial, set.password).Do(ctx, "REPLICAOF", "NO", "ONE").Err()
	case stepReplicaOf:
		m, master := d.Members[st.Member], d.Members[st.Master]
		line := fmt.Sprintf("REPLICAOF %s %d on %s", master.Host, master.Port, m.Name)
		return line, e.client(m.Dial, set.password).Do(ctx, "REPLICAOF", master.Host, strconv.Itoa(master.Port)).Err()
	case stepMonitor:
		s, master := d.Sentinels[st.Sentinel], d.Members[st.Master]
		line := fmt.Sprintf("SENTINEL MONITOR %s %s %d %d on %s", set.masterName, master.Host, master.Port, set.quorum, s.Name)
		c := e.client(s.Dial, "")
		err := c.Do(ctx, "SENTINEL", "MONITOR", set.masterName, master.Host, strconv.Itoa(master.Port), strconv.Itoa(set.quorum)).Err()
		if err != nil && !strings.Contains(err.Error(), "Duplicated master name") {
			return line, err
		}
		args := []any{"SENTINEL", "SET", set.masterName,
			"down-after-milliseconds", set.downAfter.Milliseconds(),
			"failover-timeout", set.failoverTimeout.Milliseconds(),
			"parallel-syncs", 1, "auth-pass", set.password}
		if err := c.Do(ctx, args...).Err(); err != nil {
			return line, fmt.Errorf("SENTINEL SET: %w", err)
		}
		e.mu.Lock()
		e.configured["auth|"+c.Options().Addr] = fmt.Sprintf("%x", hashString(set.password))
		e.mu.Unlock()
		return line, nil
	case stepReset:
		s := d.Sentinels[st.Sentinel]
		line := fmt.Sprintf("SENTINEL RESET %s on %s (%s)", set.masterName, s.Name, st.Why)
		e.mu.Lock()
		e.lastReset = now
		e.mu.Unlock()
		return line, e.client(s.Dial, "").Do(ctx, "SENTINEL", "RESET", set.masterName).Err()
	case stepFailover:
		s, master := d.Sentinels[st.Sentinel], d.Members[st.Master]
		line := fmt.Sprintf("SENTINEL FAILOVER %s on %s (%s)", set.masterName, s.Name, st.Why)
		e.mu.Lock()
		e.lastFail = now
		e.mu.Unlock()
		if e.cfg.PauseWrites > 0 {
			// Writes wait while the replica catches up; Sentinel's promotion then loses none.
			if err := e.client(master.Dial, set.password).Do(ctx, "CLIENT", "PAUSE", e.cfg.PauseWrites.Milliseconds(), "WRITE").Err(); err != nil {
				e.log.Warn("CLIENT PAUSE WRITE before failover", "member", master.Name, "err", err)
			}
		}
		return line, e.client(s.Dial, "").Do(ctx, "SENTINEL", "FAILOVER", set.masterName).Err()
	}
	return "", fmt.Errorf("redis: unknown step %d", st.Kind)
}
