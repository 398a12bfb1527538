// The writer: SETs through the route status names throughout, and afterwards the acknowledged
// writes missing from the final master, grouped by the member that acknowledged them.

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// writer SETs through the route: the member status.primary names while PrimaryAgreed is True.
type writer struct {
	b      *bench
	mu     sync.Mutex
	acked  map[string]string
	ackAt  []ack
	failed int
	n      int
}

type ack struct {
	at     time.Time
	member string
	key    string
}

func (w *writer) run(ctx context.Context) {
	clients := map[string]*goredis.Client{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		rs, err := w.b.status(ctx)
		if err != nil || !agreed(rs) || rs.Status.Primary == "" {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		addr := w.b.set.Servers[index(rs.Status.Primary)].Addr()
		c := clients[addr]
		if c == nil {
			c = client(addr)
			clients[addr] = c
		}
		w.n++
		key := fmt.Sprintf("k%07d", w.n)
		err = c.Set(ctx, key, rs.Status.Primary, 0).Err()
		w.mu.Lock()
		if err == nil {
			w.acked[key] = rs.Status.Primary
			w.ackAt = append(w.ackAt, ack{time.Now(), rs.Status.Primary, key})
		} else {
			w.failed++
		}
		w.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// lastAckAfter returns the first acknowledgement after t by a member other than the one
// acknowledging just before t (the new master reached through the route), and who.
func (w *writer) lastAckAfter(t time.Time) (time.Time, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var before string
	for _, a := range w.ackAt {
		if !a.at.After(t) {
			before = a.member
			continue
		}
		if a.member != before {
			return a.at, a.member
		}
	}
	return time.Time{}, ""
}

type lostReport struct {
	total   int
	other   int
	byTrial []struct {
		member string
		n      int
		window time.Duration
	}
}

func (w *writer) lost(ctx context.Context, addr string) (lostReport, int, error) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, ReadTimeout: 10 * time.Second})
	defer c.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	var rep lostReport
	missing := map[string]bool{}
	keys := make([]string, 0, len(w.ackAt))
	for _, a := range w.ackAt {
		keys = append(keys, a.key)
	}
	for start := 0; start < len(keys); start += 500 {
		batch := keys[start:min(start+500, len(keys))]
		vals, err := c.MGet(ctx, batch...).Result()
		if err != nil {
			return rep, 0, fmt.Errorf("MGET on %s: %w", addr, err)
		}
		for i, v := range vals {
			if v == nil {
				missing[batch[i]] = true
			}
		}
	}
	// Group missing keys into runs by acknowledging member; a run that ends where that member's
	// tenure ends is the loss Sentinel's asynchronous replication allows at a kill.
	for i := 0; i < len(w.ackAt); i++ {
		if !missing[w.ackAt[i].key] {
			continue
		}
		j := i
		for j+1 < len(w.ackAt) && missing[w.ackAt[j+1].key] && w.ackAt[j+1].member == w.ackAt[i].member {
			j++
		}
		n := j - i + 1
		rep.total += n
		tenureEnd := j+1 == len(w.ackAt) || w.ackAt[j+1].member != w.ackAt[i].member
		if tenureEnd {
			rep.byTrial = append(rep.byTrial, struct {
				member string
				n      int
				window time.Duration
			}{w.ackAt[i].member, n, w.ackAt[j].at.Sub(w.ackAt[i].at)})
		} else {
			rep.other += n
		}
		i = j
	}
	return rep, len(w.ackAt), nil
}
