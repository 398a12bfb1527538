package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// binDir is the host directory mounted at /opt/constellation/bin in the node: the agent binary
// nodeinit starts. A directory, not the file, so that ReplaceAgent can rename a new binary over
// the old one while the old one runs.
func (n *Node) binDir() string { return filepath.Join(n.c.Dir, "bin", n.Name) }

// installAgent puts a copy of the binary at src into the node's bin directory, atomically.
func (n *Node) installAgent(src string) error {
	if err := os.MkdirAll(n.binDir(), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("node %s: agent binary: %w", n.Name, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(n.binDir(), ".agent-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("node %s: copy agent binary: %w", n.Name, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(n.binDir(), "constellation-agent"))
}

// ReplaceAgent is an upgrade in place: the binary at path replaces the node's agent binary,
// then the running agent gets SIGTERM and nodeinit starts the new one on the same data dir, as
// `systemctl restart` after a package upgrade would. It returns once the new agent answers.
func (n *Node) ReplaceAgent(ctx context.Context, path string, max time.Duration) error {
	if err := n.installAgent(path); err != nil {
		return err
	}
	return n.RestartAgent(ctx, max)
}

// BuildAgentAt builds constellation-agent as it was at a git commit of this repository (its
// tree from `git archive`, built with this machine's Go) into dir, for the upgrade scenario.
// version is stamped as the agent's Version.
func BuildAgentAt(ctx context.Context, commit, dir, version string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "src-"+commit)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s (the clone needs that commit: a shallow clone does not have it): %w\n%s", commit, err, out)
	}
	out := filepath.Join(dir, "constellation-agent-"+commit)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-X github.com/constellation-sh/constellation/pkg/agent.Version="+version,
		"-o", out, "./cmd/constellation-agent")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the agent at %s: %w\n%s", commit, err, strings.TrimSpace(string(b)))
	}
	if err := os.RemoveAll(src); err != nil {
		return "", err
	}
	return out, nil
}
