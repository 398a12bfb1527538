// Sentinels: reading what each one monitors, pointing it at the master with the spec's options,
// and the +switch-master subscriptions that wake the controller.

package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// readSentinel reads the sentinel's view of the set and, once per sentinel run, applies the
// global settings (hostnames, announce address).
func (e *Engine) readSentinel(ctx context.Context, s replicaset.Member, set settings) sentinelView {
	v := sentinelView{Name: s.Name, Host: s.Host, Port: s.Port, Ready: s.Ready}
	if !s.Ready || s.Dial == "" {
		return v
	}
	c := e.client(s.Dial, "")
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	pipe := c.Pipeline()
	info := pipe.Info(ctx, "server")
	addr := pipe.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", set.masterName)
	master := pipe.Do(ctx, "SENTINEL", "MASTER", set.masterName)
	replicas := pipe.Do(ctx, "SENTINEL", "REPLICAS", set.masterName)
	others := pipe.Do(ctx, "SENTINEL", "SENTINELS", set.masterName)
	_, _ = pipe.Exec(ctx)
	if info.Err() != nil {
		e.log.Debug("sentinel does not answer", "sentinel", s.Name, "addr", s.Dial, "err", info.Err())
		return v
	}
	v.Reachable = true
	runID := infoField(info.Val(), "run_id")
	want := runID + "|" + s.Host + "|" + strconv.Itoa(s.Port)
	e.mu.Lock()
	done := e.configured[s.Dial] == want
	e.mu.Unlock()
	if !done {
		if err := e.configureSentinel(ctx, c, s); err != nil {
			e.log.Warn("configure sentinel", "sentinel", s.Name, "err", err)
		} else {
			e.mu.Lock()
			e.configured[s.Dial] = want
			e.mu.Unlock()
		}
	}
	if arr, ok := addr.Val().([]any); ok && len(arr) == 2 && addr.Err() == nil {
		v.Monitoring = true
		v.MasterHost, _ = arr[0].(string)
		v.MasterPort = int(toInt64(arr[1]))
	}
	if !v.Monitoring {
		return v
	}
	if mm := kv(master.Val()); mm != nil {
		v.Flags = mm["flags"]
		// Apply the per-set settings when they differ (a new spec, a sentinel that monitors
		// the set from its config file with other values).
		if err := e.setSentinelOptions(ctx, c, mm, set); err != nil {
			e.log.Warn("SENTINEL SET", "sentinel", s.Name, "err", err)
		}
	}
	for _, r := range list(replicas.Val()) {
		v.Replicas = append(v.Replicas, addrKey(r["ip"], atoi(r["port"])))
	}
	for _, o := range list(others.Val()) {
		v.Sentinels = append(v.Sentinels, addrKey(o["ip"], atoi(o["port"])))
	}
	return v
}

func (e *Engine) configureSentinel(ctx context.Context, c *goredis.Client, s replicaset.Member) error {
	for _, kvp := range [][2]string{
		{"resolve-hostnames", "yes"}, {"announce-hostnames", "yes"},
		{"announce-ip", s.Host}, {"announce-port", strconv.Itoa(s.Port)},
	} {
		if err := c.Do(ctx, "SENTINEL", "CONFIG", "SET", kvp[0], kvp[1]).Err(); err != nil {
			return fmt.Errorf("SENTINEL CONFIG SET %s: %w", kvp[0], err)
		}
	}
	return nil
}

func (e *Engine) setSentinelOptions(ctx context.Context, c *goredis.Client, mm map[string]string, set settings) error {
	args := []any{"SENTINEL", "SET", set.masterName}
	if mm["down-after-milliseconds"] != strconv.FormatInt(set.downAfter.Milliseconds(), 10) {
		args = append(args, "down-after-milliseconds", set.downAfter.Milliseconds())
	}
	if mm["failover-timeout"] != strconv.FormatInt(set.failoverTimeout.Milliseconds(), 10) {
		args = append(args, "failover-timeout", set.failoverTimeout.Milliseconds())
	}
	if mm["quorum"] != strconv.Itoa(set.quorum) {
		args = append(args, "quorum", set.quorum)
	}
	// auth-pass is not shown by SENTINEL MASTER: set it once per settings change.
	key := "auth|" + c.Options().Addr
	fp := fmt.Sprintf("%x", hashString(set.password))
	e.mu.Lock()
	authDone := e.configured[key] == fp
	e.mu.Unlock()
	if !authDone {
		args = append(args, "auth-pass", set.password)
	}
	if len(args) == 3 {
		return nil
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return err
	}
	e.mu.Lock()
	e.configured[key] = fp
	e.mu.Unlock()
	return nil
}

// subscribe keeps one +switch-master subscription per sentinel; a message calls
// Options.Changed so that the controller reconciles at once.
func (e *Engine) subscribe(ss []replicaset.Member) {
	if e.opts.Changed == nil {
		return
	}
	for _, s := range ss {
		if !s.Ready || s.Dial == "" {
			continue
		}
		e.mu.Lock()
		_, ok := e.subs[s.Dial]
		closed := e.closed
		e.mu.Unlock()
		if ok || closed {
			continue
		}
		c := e.client(s.Dial, "")
		ctx, cancel := context.WithCancel(context.Background())
		e.mu.Lock()
		e.subs[s.Dial] = cancel
		e.mu.Unlock()
		ps := c.Subscribe(ctx, "+switch-master")
		go func() {
			defer ps.Close()
			ch := ps.Channel()
			for {
				select {
				case <-ctx.Done():
					return
				case msg, ok := <-ch:
					if !ok {
						return
					}
					e.log.Info("sentinel reports +switch-master", "sentinel", s.Name, "payload", msg.Payload)
					e.opts.Changed()
				}
			}
		}()
	}
}
