package raftstore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

var (
	chaos     = flag.Bool("chaos", false, "run the long suite: hundreds of linearizability histories")
	histories = flag.Int("histories", 0, "linearizability histories to check (default 2, or 200 with -chaos)")
)

// kvInput is one register operation on one key; kvOutput what it returned.
type kvInput struct {
	Write bool
	Key   string
	Value string
}

type kvOutput struct {
	Value   string
	Unknown bool // a write whose outcome the client never learnt
}

// registerModel is a set of independent registers, one per key: every read returns the
// value of the last write linearized before it.
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return "init" },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(kvInput), output.(kvOutput)
		if in.Write {
			return true, in.Value
		}
		return out.Value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		if in.Write {
			if out.Unknown {
				return fmt.Sprintf("put(%s, %s) -> ?", in.Key, in.Value)
			}
			return fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
		}
		return fmt.Sprintf("get(%s) -> %s", in.Key, out.Value)
	},
	DescribeState: func(state any) string { return state.(string) },
}

// recorder collects a concurrent history.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	// guarded by mu:
	ops []porcupine.Operation
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// TestLinearizable checks concurrent histories of reads and writes, taken while the leader
// is killed and restarted and members are partitioned, against a register model.
func TestLinearizable(t *testing.T) {
	n := *histories
	if n == 0 {
		n = 2
		if *chaos {
			n = 200
		}
	}
	for i := range n {
		size := 3
		if i%2 == 1 {
			size = 5
		}
		t.Run(fmt.Sprintf("history%d-%dnodes", i, size), func(t *testing.T) {
			checkHistory(t, size, int64(i))
		})
	}
}

func checkHistory(t *testing.T, size int, seed int64) {
	c := newCluster(t, size, nil)
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		if _, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service(k, map[string]string{"v": "init"})); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	rec := &recorder{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 6
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(seed), uint64(cl)+2))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				run := c.running()
				s := c.store(run[r.IntN(len(run))])
				if s == nil {
					continue
				}
				key := keys[r.IntN(len(keys))]
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if r.IntN(2) == 0 {
					in := kvInput{Write: true, Key: key, Value: fmt.Sprintf("%d.%d", cl, i)}
					call := rec.now()
					_, err := s.Update(ctx, storetest.Service(key, map[string]string{"v": in.Value}))
					ret := rec.now()
					out := kvOutput{}
					if err != nil {
						// It may still commit: it overlaps everything after its call.
						out.Unknown, ret = true, 1<<62
					}
					rec.add(porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				} else {
					call := rec.now()
					o, err := s.Get(ctx, v1.KindService, key)
					ret := rec.now()
					if err == nil {
						rec.add(porcupine.Operation{ClientId: cl, Input: kvInput{Key: key}, Call: call, Output: kvOutput{Value: o.GetMetadata().Labels["v"]}, Return: ret})
					} else if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrClosed) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("read: %v", err)
					}
				}
				cancel()
			}
		}()
	}

	// The nemesis: kill and restart the leader, cut a random member off, cut the leader off.
	step := func(d time.Duration) { time.Sleep(d) }
	step(400 * time.Millisecond)
	lead := c.leader()
	c.stop(lead)
	step(800 * time.Millisecond)
	c.restart(lead)
	step(400 * time.Millisecond)
	victim := rng.IntN(size)
	c.net.isolate(c.store(victim).ID(), c.ids())
	step(800 * time.Millisecond)
	c.net.heal()
	step(300 * time.Millisecond)
	lead = c.leader()
	c.net.isolate(c.store(lead).ID(), c.ids())
	step(800 * time.Millisecond)
	c.net.heal()
	step(400 * time.Millisecond)
	close(stop)
	wg.Wait()

	rec.mu.Lock()
	ops := rec.ops
	rec.mu.Unlock()
	known := 0
	for _, op := range ops {
		if !op.Output.(kvOutput).Unknown {
			known++
		}
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, time.Minute)
	t.Logf("%d operations (%d with a known outcome): %s", len(ops), known, res)
	switch res {
	case porcupine.Illegal:
		dir := os.Getenv("RAFTSTORE_ARTIFACTS")
		if dir == "" {
			dir = os.TempDir()
		}
		path := filepath.Join(dir, fmt.Sprintf("raftstore-nonlinearizable-%s-%d.html", time.Now().UTC().Format("20060102T150405"), seed))
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Errorf("write visualization: %v", err)
		}
		t.Fatalf("history is not linearizable; visualization saved to %s", path)
	case porcupine.Unknown:
		t.Log("linearizability check timed out: inconclusive")
	}
	if known < 20 {
		t.Errorf("only %d operations completed: the cluster did not make progress through the faults", known)
	}
}
