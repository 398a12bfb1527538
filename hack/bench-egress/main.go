// Command bench-egress measures, per failure mode of the fake WARP gateway, how long the agent
// takes to detect it (break → the gateway replica published unhealthy) and to recover the chain
// (break → a dependent sharing the gateway's namespace reaches the endpoint through the tunnel
// again), over -trials trials against the local dockerd, and prints min/median/max. It runs
// test/runtime's TestEgressBench (the same stack and checks as TestEgressFailureModes:
// interval 300ms, timeout 250ms, threshold 3, probe via the SOCKS port).
//
//	go run ./hack/bench-egress [-trials 10]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	trials := flag.Int("trials", 10, "trials per failure mode")
	flag.Parse()
	cmd := exec.Command("go", "test", "-count=1", "-timeout=60m", "-v", "-run", "^TestEgressBench$", "./test/runtime/")
	cmd.Env = append(os.Environ(), fmt.Sprintf("CONSTELLATION_EGRESS_TRIALS=%d", *trials))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fatal(err)
	}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	detect, recovery := map[string][]time.Duration{}, map[string][]time.Duration{}
	var order []string
	var tail []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "BENCH" {
			tail = append(tail, sc.Text())
			if len(tail) > 40 {
				tail = tail[1:]
			}
			continue
		}
		d, _ := strconv.ParseInt(f[3], 10, 64)
		r, _ := strconv.ParseInt(f[4], 10, 64)
		if _, ok := detect[f[1]]; !ok {
			order = append(order, f[1])
		}
		detect[f[1]] = append(detect[f[1]], time.Duration(d)*time.Microsecond)
		recovery[f[1]] = append(recovery[f[1]], time.Duration(r)*time.Microsecond)
	}
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, strings.Join(tail, "\n"))
		fatal(fmt.Errorf("go test: %w", err))
	}
	bound := 3*300*time.Millisecond + 250*time.Millisecond
	fmt.Printf("egress failure modes, %d trials each; detection bound interval x threshold + timeout = %s\n\n", *trials, bound)
	fmt.Printf("%-16s %6s  %-32s %-32s\n", "mode", "trials", "detect min / median / max", "recover min / median / max")
	for _, m := range order {
		fmt.Printf("%-16s %6d  %-32s %-32s\n", m, len(detect[m]), stats(detect[m]), stats(recovery[m]))
	}
}

func stats(ds []time.Duration) string {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	med := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		med = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return r(ds[0]) + " / " + r(med) + " / " + r(ds[len(ds)-1])
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-egress:", err)
	os.Exit(1)
}
