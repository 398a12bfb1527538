package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayering(t *testing.T) {
	dir := t.TempDir()
	toml := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(toml, []byte(`
dataDir = "/srv/file"
join = ["10.0.0.1:7480"]
[node]
  name = "from-file"
  [node.labels]
    role = "lb"
[api]
  address = "127.0.0.1:9000"
[raft]
  address = ":9001"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"CONSTELLATION_NODE_NAME=from-env", "CONSTELLATION_RAFT_ADDRESS=:9101", "HOME=/root"}
	args := []string{"--configFile=" + toml, "--raft.address=:9201", "--node.labels.zone=a", "--join=10.0.0.2:7480,10.0.0.3:7480"}
	cfg, err := Load(args, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/file" || cfg.API.Address != "127.0.0.1:9000" {
		t.Errorf("file layer lost: dataDir=%s api=%s", cfg.DataDir, cfg.API.Address)
	}
	if cfg.Node.Name != "from-env" {
		t.Errorf("env should override file: node.name=%s", cfg.Node.Name)
	}
	if cfg.Raft.Address != ":9201" {
		t.Errorf("flags should override env: raft.address=%s", cfg.Raft.Address)
	}
	if cfg.Node.Labels["zone"] != "a" {
		t.Errorf("flag labels: %v", cfg.Node.Labels)
	}
	if strings.Join(cfg.Join, " ") != "10.0.0.2:7480 10.0.0.3:7480" {
		t.Errorf("join: %v", cfg.Join)
	}
	if cfg.Gossip.Address != ":7482" || cfg.Node.AdvertiseAddress != "127.0.0.1" {
		t.Errorf("defaults: gossip=%s advertise=%s", cfg.Gossip.Address, cfg.Node.AdvertiseAddress)
	}
}

func TestValidationNamesTheOption(t *testing.T) {
	for args, want := range map[string]string{
		"--api.address=nope":                "--api.address",
		"--api.address=0.0.0.0:7480":        "--api.tokenFile: required",
		"--log.level=loud":                  "--log.level",
		"--join=nohost":                     "--join",
		"--node.advertiseAddress=not-an-ip": "--node.advertiseAddress",
		"--store.memory=true --join=a:1":    "--store.memory",
		"--security.hostPaths=/srv,etc/ssl": "--security.hostPaths",
	} {
		_, err := Load(strings.Fields(args+" --dataDir=/tmp/x"), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %s", args, err, want)
		}
	}
}

func TestReadSecretFileRefusesLooseModes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 token accepted: %v", err)
	}
	_ = os.Chmod(p, 0o600)
	if tok, err := ReadSecretFile(p); err != nil || tok != "abc" {
		t.Fatalf("ReadSecretFile = %q, %v", tok, err)
	}
}

func TestSecurityFlags(t *testing.T) {
	cfg, err := Load([]string{"--dataDir=/tmp/x", "--security.allowHostAccess=true", "--security.hostPaths=/etc/ssl/,/srv//www"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Security.AllowHostAccess || strings.Join(cfg.Security.HostPaths, ",") != "/etc/ssl,/srv/www" {
		t.Fatalf("security %+v", cfg.Security)
	}
}
