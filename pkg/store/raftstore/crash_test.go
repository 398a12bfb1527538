package raftstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// crashProc is one member running as its own process (internal/crashnode).
type crashProc struct {
	name, dir, raft, api, log string
	cmd                       *exec.Cmd
}

// TestProcessCrash kills members with SIGKILL during a write burst (one at a time, the
// leader among them, then all at once), restarts them on their data dirs, and checks that
// every acknowledged write survived at its revision on every member. Run with -chaos.
func TestProcessCrash(t *testing.T) {
	if !*chaos {
		t.Skip("process-level crash test: run with -chaos")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "crashnode")
	build := exec.Command("go", "build", "-o", bin, "./internal/crashnode")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build crashnode: %v\n%s", err, out)
	}
	procs := make([]*crashProc, 3)
	for i := range procs {
		procs[i] = &crashProc{name: fmt.Sprintf("p%d", i), dir: filepath.Join(tmp, fmt.Sprintf("p%d", i)),
			raft: freeAddr(t), api: freeAddr(t), log: filepath.Join(tmp, fmt.Sprintf("p%d.log", i))}
	}
	var pmu sync.Mutex // guards procs[i].cmd
	start := func(i int, join string) {
		p := procs[i]
		args := []string{"-name", p.name, "-dir", p.dir, "-raft", p.raft, "-api", p.api}
		if join != "" {
			args = append(args, "-join", join)
		}
		cmd := exec.Command(bin, args...)
		f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pmu.Lock()
		p.cmd = cmd
		pmu.Unlock()
	}
	kill := func(i int) {
		pmu.Lock()
		cmd := procs[i].cmd
		procs[i].cmd = nil
		pmu.Unlock()
		if cmd != nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_, _ = cmd.Process.Wait()
		}
	}
	t.Cleanup(func() {
		for i := range procs {
			kill(i)
		}
		if t.Failed() {
			for _, p := range procs {
				b, _ := os.ReadFile(p.log)
				lines := strings.Split(string(b), "\n")
				t.Logf("--- %s log tail:\n%s", p.name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	client := &http.Client{Timeout: 3 * time.Second}
	getJSON := func(i int, path string, v any) error {
		resp, err := client.Get("http://" + procs[i].api + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	roles := func(i int) map[string]v1.RaftRole {
		var ms []MemberStatus
		if err := getJSON(i, "/members", &ms); err != nil {
			return nil
		}
		out := map[string]v1.RaftRole{}
		for _, m := range ms {
			out[m.Name] = m.Role
		}
		return out
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	start(0, "")
	waitFor("p0 to lead", func() bool { return roles(0)["p0"] == v1.RaftLeader })
	start(1, procs[0].api)
	start(2, procs[0].api)
	waitFor("three voters", func() bool {
		r := roles(0)
		voters := 0
		for _, role := range r {
			if role == v1.RaftLeader || role == v1.RaftFollower {
				voters++
			}
		}
		return voters == 3
	})

	acks := &ackLog{byName: map[string]int64{}, byRev: map[int64]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("c-%d-%d", g, i)
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, "http://"+procs[rand.IntN(3)].api+"/put/"+name, nil)
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					rev, err := strconv.ParseInt(string(b), 10, 64)
					if err != nil {
						t.Errorf("bad revision %q", b)
						return
					}
					acks.add(name, rev)
				}
			}
		}()
	}
	leaderIndex := func() int {
		for i := range procs {
			for name, role := range roles(i) {
				if role == v1.RaftLeader {
					return int(name[1] - '0')
				}
			}
		}
		return rand.IntN(3)
	}
	for round := range 4 {
		time.Sleep(700 * time.Millisecond)
		victim := rand.IntN(3)
		if round%2 == 0 {
			victim = leaderIndex()
		}
		t.Logf("round %d: kill -9 %s", round, procs[victim].name)
		kill(victim)
		time.Sleep(500 * time.Millisecond)
		start(victim, "")
	}
	time.Sleep(700 * time.Millisecond)
	t.Log("kill -9 every member during the burst")
	for i := range procs {
		kill(i)
	}
	for i := range procs {
		start(i, "")
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	type listing struct {
		Revision int64             `json:"revision"`
		Items    map[string]string `json:"items"`
	}
	lists := make([]listing, 3)
	waitFor("members to converge", func() bool {
		for i := range procs {
			if err := getJSON(i, "/list", &lists[i]); err != nil {
				return false
			}
		}
		return lists[0].Revision == lists[1].Revision && lists[1].Revision == lists[2].Revision
	})
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for _, d := range acks.dupRev {
		t.Error(d)
	}
	if len(acks.byName) < 50 {
		t.Errorf("only %d writes acknowledged", len(acks.byName))
	}
	for i, l := range lists {
		for name, rev := range acks.byName {
			if l.Items[name] != strconv.FormatInt(rev, 10) {
				t.Errorf("%s: acknowledged %s at revision %d, found %q", procs[i].name, name, rev, l.Items[name])
			}
		}
		if len(l.Items) != len(lists[0].Items) {
			t.Errorf("%s holds %d objects, p0 holds %d", procs[i].name, len(l.Items), len(lists[0].Items))
		}
		for name, rv := range lists[0].Items {
			if l.Items[name] != rv {
				t.Errorf("%s: %s at %q, p0 has %q", procs[i].name, name, l.Items[name], rv)
			}
		}
	}
	t.Logf("%d acknowledged writes survived kill -9, converged at revision %d", len(acks.byName), lists[0].Revision)
}
