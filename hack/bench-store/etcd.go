package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var etcdVer string

// etcdPIDs are the etcd members' processes.
var etcdPIDs []int

func etcdVersion() string { return etcdVer }

func startEtcd(dir, value string, keys int) (writer, func() diskCounts, func(), error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd not found: installing etcd-server with apt-get")
		cmd := exec.Command("apt-get", "install", "-y", "etcd-server")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, nil, func() {}, fmt.Errorf("install etcd-server: %w", err)
		}
		if bin, err = exec.LookPath("etcd"); err != nil {
			return nil, nil, func() {}, err
		}
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		if f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0]); len(f) > 0 {
			etcdVer = f[len(f)-1]
		}
	}
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_, _ = p.Process.Wait()
		}
	}
	var peers, clients []string
	var cluster []string
	for i := range 3 {
		p, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		c, err := freePort()
		if err != nil {
			return nil, nil, stop, err
		}
		peers, clients = append(peers, "http://"+p), append(clients, "http://"+c)
		cluster = append(cluster, fmt.Sprintf("e%d=http://%s", i, p))
	}
	for i := range 3 {
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("e%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i)),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "bench", "--log-level", "error")
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("e%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, stop, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, stop, fmt.Errorf("start etcd: %w", err)
		}
		procs = append(procs, cmd)
		etcdPIDs = append(etcdPIDs, cmd.Process.Pid)
	}
	// Find the leader through the maintenance status of each member.
	deadline := time.Now().Add(60 * time.Second)
	leader := ""
	for time.Now().Before(deadline) && leader == "" {
		for _, c := range clients {
			resp, err := http.Post(c+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
			if err != nil {
				continue
			}
			var st struct {
				Header struct {
					MemberID string `json:"member_id"`
				} `json:"header"`
				Leader string `json:"leader"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID {
				leader = c
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if leader == "" {
		return nil, nil, stop, errors.New("etcd cluster did not elect a leader")
	}
	url := leader + "/v3/kv/put"
	w := func(ctx context.Context, client *http.Client, i int) error {
		body, _ := json.Marshal(map[string]string{
			"key":   base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "k%d", i%keys)),
			"value": base64.StdEncoding.EncodeToString([]byte(freshValue(value))),
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return doOK(client, req, "etcd put")
	}
	counts := func() diskCounts {
		var c diskCounts
		for _, cl := range clients {
			m := scrape(cl + "/metrics")
			syncs := m["etcd_disk_wal_fsync_duration_seconds_count"]
			c.fdatasyncs += syncs + 2*m["etcd_disk_backend_commit_duration_seconds_count"]
			if cl == leader {
				c.leaderCommits = syncs
				c.syncSeconds = m["etcd_disk_wal_fsync_duration_seconds_sum"]
			}
		}
		return c
	}
	return w, counts, stop, nil
}

// doOK sends req and wants 200 OK; anything else is an error naming what.
func doOK(client *http.Client, req *http.Request, what string) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", what, resp.Status, b)
	}
	return nil
}
