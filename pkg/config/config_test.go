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

func TestMeshCIDR(t *testing.T) {
	cfg, err := Load([]string{"--dataDir=/tmp/x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mesh.CIDR != "10.213.0.0/16" {
		t.Errorf("default --mesh.cidr = %q, want 10.213.0.0/16", cfg.Mesh.CIDR)
	}
	cfg, err = Load([]string{"--dataDir=/tmp/x"}, []string{"CONSTELLATION_MESH_CIDR=172.30.0.0/20"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mesh.CIDR != "172.30.0.0/20" {
		t.Errorf("env CONSTELLATION_MESH_CIDR: got %q", cfg.Mesh.CIDR)
	}
	for value, want := range map[string]string{
		"10.0.0.0/24":    "",
		"10.0.0.0/8":     "",
		"10.0.0.0/7":     "/8 to /24, got /7",
		"10.0.0.0/25":    "/8 to /24, got /25",
		"fd00::/64":      "not an IPv4 prefix",
		"10.213.0.0":     "not a CIDR prefix",
		"10.213.5.1/16":  "did you mean 10.213.0.0/16",
		"":               "not a CIDR prefix",
		"banana/16":      "not a CIDR prefix",
		"10.213.0.0/016": "not a CIDR prefix",
	} {
		_, err := Load([]string{"--dataDir=/tmp/x", "--mesh.cidr=" + value}, nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("--mesh.cidr=%s: unexpected error %v", value, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), "--mesh.cidr: ") || !strings.Contains(err.Error(), want)):
			t.Errorf("--mesh.cidr=%s: err = %v, want it to name --mesh.cidr and say %q", value, err, want)
		}
	}
}
