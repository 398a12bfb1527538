package raftstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// A member that was down while the others wrote large entries (1 MiB Secrets, e2e scenario 8)
// catches up once it is back, and a linearizable List through it sees every write. Meanwhile
// the leader does not keep the appends it could not deliver: its queue to the stopped member
// holds at most what arrived since the last failed dial.
func TestStoppedMemberCatchesUpOnLargeEntries(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	f := (lead + 1) % 3
	fid := c.store(f).ID()
	c.stop(f)
	const writes = 48
	big := strings.Repeat("x", 1<<20-64)
	for i := range writes {
		if _, err := c.store(lead).Create(tctx(t, 20*time.Second), spec.Secret(fmt.Sprintf("d-%02d", i), map[string]string{"blob": big})); err != nil {
			t.Fatal(err)
		}
	}
	tr := c.store(lead).tr
	tr.mu.Lock()
	p := tr.peers[fid]
	tr.mu.Unlock()
	// The peer goroutine redials at most every second and drops the queue when it fails.
	deadline := time.Now().Add(5 * time.Second)
	for len(p.q) > 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(p.q); n > 8 {
		t.Errorf("the leader still queues %d messages (up to 1 MiB each) for a member that has been down for %d writes", n, writes)
	}
	if got := counterValue(c.store(lead).met.messagesDropped.WithLabelValues("peer_unreachable")); got < 1 {
		t.Errorf("no message counted as dropped for the unreachable peer (%v)", got)
	}
	t0 := time.Now()
	c.restart(f)
	objs, _, err := c.store(f).List(tctx(t, 60*time.Second), v1.KindSecret, v1.Selector{})
	if err != nil {
		t.Fatalf("linearizable List through the member that was down, %s after its restart: %v", time.Since(t0).Round(time.Millisecond), err)
	}
	if len(objs) != writes {
		t.Fatalf("the member that was down lists %d Secrets, want %d", len(objs), writes)
	}
	t.Logf("caught up on %d MiB and listed them %s after the restart", writes, time.Since(t0).Round(time.Millisecond))
}
