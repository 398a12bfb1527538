// Command bench-apply measures the Docker runtime against plain Docker on the local engine.
//
//	go run ./hack/bench-apply [-replicas 1,10,50] [-interval 500ms] [-update-replicas 3] [-rps 200]
//
// For each replica count it times, in one run:
//   - constellation: creating the Service in an in-process store until every replica is ready
//     in the observed view (the scheduler and the node reconciler run in-process, as in an
//     agent; the HTTP health check is probed by the agent);
//   - docker run: `docker run -d` of the same containers one after the other, with the same
//     health check as a Docker HEALTHCHECK (image constellation-test/echo:hc, exec form
//     `/app -probe URL`, same interval and retries), until `docker inspect` shows all healthy;
//   - with -docker-parallel P, the same with P `docker run` at a time;
//
// and prints the ratios. Then it rolls an image update (echo:1 → echo:2) under a steady HTTP
// load sent through a reverse proxy that follows the observed view (no retries), and counts the
// failed requests. Every container carries a per-run prefix and is removed at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/node"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

func main() {
	replicas := flag.String("replicas", "1,10,50", "replica counts to measure")
	interval := flag.Duration("interval", time.Second, "health check interval (both sides)")
	parallel := flag.Int("docker-parallel", 0, "also time `docker run` with this many at a time (0: skip)")
	updateReplicas := flag.Int("update-replicas", 3, "replicas for the update-under-load measurement (0: skip)")
	rps := flag.Int("rps", 200, "requests per second during the update")
	flag.Parse()
	if err := run(*replicas, *interval, *parallel, *updateReplicas, *rps); err != nil {
		fmt.Fprintln(os.Stderr, "bench-apply:", err)
		os.Exit(1)
	}
}

func run(replicaList string, interval time.Duration, parallel, updateReplicas, rps int) error {
	top, _ := os.Getwd()
	build := exec.Command(filepath.Join(top, "hack", "build-test-images.sh"))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build test images (run from the repository root): %w", err)
	}
	dc, err := docker.New(docker.Options{})
	if err != nil {
		return err
	}
	defer dc.Close()
	if err := dc.Ping(context.Background()); err != nil {
		return err
	}
	fmt.Printf("docker API %s, health interval %s\n\n", dc.APIVersion(), interval)
	fmt.Printf("%8s %14s %14s %8s", "replicas", "constellation", "docker run", "ratio")
	if parallel > 1 {
		fmt.Printf(" %16s %8s", fmt.Sprintf("docker run -P%d", parallel), "ratio")
	}
	fmt.Println()
	for _, f := range strings.Split(replicaList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		c, err := timeConstellation(dc, n, interval)
		if err != nil {
			return fmt.Errorf("constellation %d: %w", n, err)
		}
		fmt.Printf("%8d %14s", n, c.Round(time.Millisecond))
		d, err := timeDockerRun(n, interval, 1)
		if err != nil {
			fmt.Printf(" %14s %8s", "failed", "-")
			fmt.Fprintf(os.Stderr, "\ndocker run %d: %v\n", n, err)
		} else {
			fmt.Printf(" %14s %7.2fx", d.Round(time.Millisecond), c.Seconds()/d.Seconds())
		}
		if parallel > 1 {
			if d, err := timeDockerRun(n, interval, parallel); err != nil {
				fmt.Printf(" %16s %8s", "failed", "-")
				fmt.Fprintf(os.Stderr, "\ndocker run -P %d: %v\n", n, err)
			} else {
				fmt.Printf(" %16s %7.2fx", d.Round(time.Millisecond), c.Seconds()/d.Seconds())
			}
		}
		fmt.Println()
	}
	if updateReplicas > 0 {
		fmt.Println()
		if err := updateUnderLoad(dc, updateReplicas, interval, rps); err != nil {
			return fmt.Errorf("update under load: %w", err)
		}
	}
	return nil
}

type rig struct {
	ctx    context.Context
	cancel context.CancelFunc
	prefix string
	node   string
	st     *store.Memory
	view   *observed.Set
	dc     *docker.Client
}

func newRig(dc *docker.Client) (*rig, error) {
	ctx, cancel := context.WithCancel(context.Background())
	prefix := fmt.Sprintf("bench%d-", time.Now().UnixNano()%1_000_000)
	r := &rig{ctx: ctx, cancel: cancel, prefix: prefix, node: prefix + "node", st: store.NewMemory(), view: observed.NewSet(), dc: dc}
	o, err := r.st.Create(ctx, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: r.node}})
	if err != nil {
		return nil, err
	}
	n := o.(*v1.Node)
	n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := r.st.UpdateStatus(ctx, n); err != nil {
		return nil, err
	}
	r.view.SetNode(observed.Node{Name: r.node, Advertise: "127.0.0.1", Alive: true})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sched, err := scheduler.New(scheduler.Config{Store: r.st, View: r.view, Logger: logger})
	if err != nil {
		return nil, err
	}
	rec, err := node.New(node.Config{Node: r.node, Advertise: "127.0.0.1", PublishIP: "127.0.0.1", NamePrefix: prefix,
		Store: r.st, Docker: dc, Publish: func(rs []observed.Replica) { r.view.SetNodeReplicas(r.node, rs) }, Logger: logger})
	if err != nil {
		return nil, err
	}
	go sched.Run(ctx)
	go rec.Run(ctx)
	return r, nil
}

func (r *rig) close() {
	r.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, _ := r.dc.List(ctx, map[string]string{docker.LabelNode: r.node})
	for _, c := range cs {
		_ = r.dc.Remove(ctx, c.ID)
	}
}

func spec(image string, n int, interval time.Duration) v1.ServiceSpec {
	reps, retries := int32(n), int32(2)
	return v1.ServiceSpec{Image: image, Replicas: &reps, Ports: []v1.ServicePort{{ContainerPort: 8080}},
		HealthCheck: &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz"}, Interval: &v1.Duration{Duration: interval}, Retries: &retries}}
}

func (r *rig) put(name string, sp v1.ServiceSpec) error {
	for {
		o, err := r.st.Get(r.ctx, v1.KindService, name)
		if errors.Is(err, store.ErrNotFound) {
			svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name}, Spec: sp}
			svc.Default()
			_, err = r.st.Create(r.ctx, svc)
			return err
		}
		if err != nil {
			return err
		}
		svc := o.(*v1.Service)
		svc.Spec = sp
		svc.Default()
		if _, err = r.st.Update(r.ctx, svc); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// readyCount counts replicas of name with hash that are ready in the view.
func (r *rig) readyCount(name, hash string) int {
	n := 0
	for _, rep := range r.view.Replicas() {
		if rep.Service == name && rep.SpecHash == hash && rep.Ready() {
			n++
		}
	}
	return n
}

func (r *rig) waitReady(name string, sp v1.ServiceSpec, n int, timeout time.Duration) error {
	hash := spechash.Of(&sp)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.readyCount(name, hash) == n {
			return nil
		}
		select {
		case <-r.view.Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%d of %d ready after %s", r.readyCount(name, hash), n, timeout)
}

func timeConstellation(dc *docker.Client, n int, interval time.Duration) (time.Duration, error) {
	r, err := newRig(dc)
	if err != nil {
		return 0, err
	}
	defer r.close()
	sp := spec("constellation-test/echo:1", n, interval)
	start := time.Now()
	if err := r.put("bench", sp); err != nil {
		return 0, err
	}
	if err := r.waitReady("bench", sp, n, 5*time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func timeDockerRun(n int, interval time.Duration, parallel int) (time.Duration, error) {
	prefix := fmt.Sprintf("benchrun%d-", time.Now().UnixNano()%1_000_000)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	defer func() {
		args := append([]string{"rm", "-f"}, names...)
		_ = exec.Command("docker", args...).Run()
	}()
	start := time.Now()
	sem := make(chan struct{}, parallel)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// echo:hc carries HEALTHCHECK CMD ["/app","-probe",URL]; the flags set the same timing.
			out, err := exec.Command("docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8080", "--restart", "no",
				"--health-interval", interval.String(), "--health-retries", "2", "--health-timeout", "1s",
				"constellation-test/echo:hc").CombinedOutput()
			if err != nil {
				errc <- fmt.Errorf("docker run: %v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	healthy := 0
	for time.Since(start) < 3*time.Minute {
		args := append([]string{"inspect", "-f", "{{.State.Health.Status}}"}, names...)
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			return 0, err
		}
		// An unhealthy one may recover (Docker keeps probing): wait for all healthy at once.
		healthy = 0
		for _, l := range strings.Fields(string(out)) {
			if l == "healthy" {
				healthy++
			}
		}
		if healthy == n {
			return time.Since(start), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("only %d of %d healthy at once after 3m", healthy, n)
}

// updateUnderLoad rolls echo:1 → echo:2 while a reverse proxy following the view serves a
// steady load, and counts failed requests.
func updateUnderLoad(dc *docker.Client, n int, interval time.Duration, rps int) error {
	r, err := newRig(dc)
	if err != nil {
		return err
	}
	defer r.close()
	sp1 := spec("constellation-test/echo:1", n, interval)
	if err := r.put("web", sp1); err != nil {
		return err
	}
	if err := r.waitReady("web", sp1, n, 2*time.Minute); err != nil {
		return err
	}
	var rr atomic.Int64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			var eps []string
			for _, rep := range r.view.Replicas() {
				if rep.Service == "web" && rep.Ready() && rep.Ports["8080/tcp"] != "" {
					eps = append(eps, rep.Ports["8080/tcp"])
				}
			}
			if len(eps) == 0 {
				pr.Out.URL, _ = url.Parse("http://127.0.0.1:1/")
				return
			}
			u, _ := url.Parse("http://" + eps[int(rr.Add(1))%len(eps)])
			pr.SetURL(u)
		},
		ErrorLog: nil,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	defer srv.Close()

	var sent, failed atomic.Int64
	var mu sync.Mutex
	versions := map[string]int{}
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second / time.Duration(rps))
		defer t.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				sent.Add(1)
				resp, err := client.Get("http://" + ln.Addr().String() + "/")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, strings.TrimSpace(string(b)))
					return
				}
				if f := strings.Fields(string(b)); len(f) > 1 {
					mu.Lock()
					versions[f[1]]++
					mu.Unlock()
				}
			}()
		}
	}()
	time.Sleep(time.Second)
	sp2 := spec("constellation-test/echo:2", n, interval)
	start := time.Now()
	if err := r.put("web", sp2); err != nil {
		return err
	}
	// Complete: every replica runs echo:2 and is ready, and no old one is left.
	h2 := spechash.Of(&sp2)
	for time.Since(start) < 3*time.Minute {
		o, err := r.st.Get(r.ctx, v1.KindService, "web")
		if err != nil {
			return err
		}
		c := v1.FindCondition(o.(*v1.Service).Status.Conditions, v1.ServiceProgressing)
		if c != nil && c.Reason == v1.ReasonRolloutComplete && r.readyCount("web", h2) == n && len(o.(*v1.Service).Status.Assignments) == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(3 * time.Second) // old replicas drain and stop after completion
	close(stop)
	wg.Wait()
	fmt.Printf("rolling update echo:1 -> echo:2 of %d replicas (start-first, maxSurge 1) under %d req/s through a proxy following the view:\n", n, rps)
	fmt.Printf("  rollout took %s; %d requests, %d failed; answers by version %v\n", took.Round(time.Millisecond), sent.Load(), failed.Load(), versions)
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first failure: %v\n", e)
	}
	return nil
}
