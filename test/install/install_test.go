// Package install tests hack/install.sh under a staging root (DESTDIR): what it writes, with
// which modes, that the agent reads the config it writes, that systemd accepts the unit, and
// that --uninstall keeps the data unless --purge.
package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/constellation-sh/constellation/pkg/config"
)

func script(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../hack/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeBins are stand-ins for the built binaries (the script copies them; it runs nothing).
func fakeBins(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, b := range []string{"constellation-agent", "ctl"} {
		if err := os.WriteFile(filepath.Join(d, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func run(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command(script(t), args...)
	cmd.Env = append(os.Environ(), "DESTDIR="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestFirstNode(t *testing.T) {
	root, bins := t.TempDir(), fakeBins(t)
	run(t, root, "--from", bins, "--node-name", "n1", "--advertise", "10.0.0.1", "--labels", "role=lb,zone=a")
	for p, want := range map[string]os.FileMode{
		"usr/local/bin/constellation-agent":              0o755,
		"usr/local/bin/ctl":                              0o755,
		"etc/systemd/system/constellation-agent.service": 0o644,
		"etc/constellation":                              0o700,
		"etc/constellation/agent.toml":                   0o600,
		"etc/constellation/tokens":                       0o600,
		"etc/constellation/admin.token":                  0o600,
		"var/lib/constellation":                          0o700,
	} {
		if got := mode(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
	tokens, _ := os.ReadFile(filepath.Join(root, "etc/constellation/tokens"))
	admin, _ := os.ReadFile(filepath.Join(root, "etc/constellation/admin.token"))
	tok := strings.TrimSpace(string(admin))
	if len(tok) != 64 || !strings.Contains(string(tokens), "admin admin "+tok+"\n") || !strings.Contains(string(tokens), "traefik provider ") {
		t.Fatalf("tokens not generated as expected:\n%s\nadmin.token %q", tokens, admin)
	}
	// The agent reads the file it wrote (paths as on the machine it is for).
	cfg, err := config.Load([]string{"--configFile=" + filepath.Join(root, "etc/constellation/agent.toml")}, nil)
	if err != nil {
		t.Fatalf("agent.toml: %v", err)
	}
	if cfg.Node.Name != "n1" || cfg.Node.AdvertiseAddress != "10.0.0.1" || cfg.API.Address != "0.0.0.0:7480" ||
		cfg.API.TokenFile != "/etc/constellation/tokens" || cfg.DataDir != "/var/lib/constellation" ||
		cfg.Node.Labels["role"] != "lb" || cfg.Node.Labels["zone"] != "a" || len(cfg.Join) != 0 {
		t.Fatalf("config read back: %+v", cfg)
	}
	// A second run keeps the tokens and the config.
	run(t, root, "--from", bins, "--node-name", "other")
	again, _ := os.ReadFile(filepath.Join(root, "etc/constellation/admin.token"))
	if string(again) != string(admin) {
		t.Fatal("a second install replaced the admin token")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/constellation/agent.toml")); !strings.Contains(string(b), `name = "n1"`) {
		t.Fatal("a second install replaced agent.toml")
	}
}

func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze missing (Debian: apt-get install systemd)")
	}
	root, bins := t.TempDir(), fakeBins(t)
	run(t, root, "--from", bins)
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/constellation-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=always", "ExecStart=/usr/local/bin/constellation-agent --configFile=/etc/constellation/agent.toml", "ReadWritePaths=/var/lib/constellation"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// systemd-analyze checks that ExecStart exists: point it at the staged binary.
	p := filepath.Join(t.TempDir(), "constellation-agent.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin", filepath.Join(root, "usr/local/bin"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestJoinNode(t *testing.T) {
	root, bins := t.TempDir(), fakeBins(t)
	tf := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tf, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, root, "--from", bins, "--node-name", "n2", "--advertise", "10.0.0.2", "--join", "https://10.0.0.1:7480", "--token-file", tf)
	cfg, err := config.Load([]string{"--configFile=" + filepath.Join(root, "etc/constellation/agent.toml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Join, ",") != "https://10.0.0.1:7480" {
		t.Fatalf("join: %v", cfg.Join)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/constellation/tokens")); string(b) != "s3cret\n" {
		t.Fatalf("tokens on a joining node: %q, want the given admin token", b)
	}
	// --join without a token file is refused.
	cmd := exec.Command(script(t), "--from", bins, "--join", "https://10.0.0.1:7480")
	cmd.Env = append(os.Environ(), "DESTDIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--token-file") {
		t.Fatalf("--join without --token-file: err=%v\n%s", err, out)
	}
}

func TestUninstallKeepsDataUnlessPurge(t *testing.T) {
	root, bins := t.TempDir(), fakeBins(t)
	run(t, root, "--from", bins)
	data := filepath.Join(root, "var/lib/constellation/raft.db")
	if err := os.WriteFile(data, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, root, "--uninstall")
	for _, gone := range []string{"usr/local/bin/constellation-agent", "usr/local/bin/ctl", "etc/systemd/system/constellation-agent.service"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after --uninstall", gone)
		}
	}
	for _, kept := range []string{data, filepath.Join(root, "etc/constellation/tokens")} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("--uninstall removed %s", kept)
		}
	}
	run(t, root, "--uninstall", "--purge")
	for _, gone := range []string{"var/lib/constellation", "etc/constellation"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after --purge", gone)
		}
	}
}
