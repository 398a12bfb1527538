package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Artifacts are what every run of this process shares: binaries, the node image, the saved
// workload images. Built once per process by Prepare.
type Artifacts struct {
	// Root is the repository's top directory.
	Root string
	// Dir holds the binaries and the image archive.
	Dir string
	// Agent, Ctl, NodeInit and Traefik are host paths of the binaries (Agent and NodeInit static).
	Agent, Ctl, NodeInit, Traefik string
	// NodeImage is the node container image.
	NodeImage string
	// Init is the host's docker-init (tini), PID 1 of every node; under /usr like everything the
	// nodes run from the host.
	Init string
	// Images are the workload images every node's dockerd holds before a scenario, and
	// ImagesTar their archive, loaded into the first node (every node with MemoryStore or
	// AgentBinary); the others fetch them through the agents (Cluster.distributeImages).
	Images    []string
	ImagesTar string
}

// DefaultImages are the workload images every node gets.
var DefaultImages = []string{"constellation-test/echo:1", "constellation-test/echo:2", "constellation-test/redis:7", "constellation-test/fakewarp:1", "constellation-test/fakenet:1"}

var (
	artifactsDir atomic.Value // string: the process's build directory, removed by Cleanup
	prepareOnce  sync.Once
	prepared     *Artifacts
	prepareErr   error
)

// Prepare builds everything a cluster needs, once per process: the agent and nodeinit (static),
// ctl, Traefik (hack/traefik.sh, cached under ~/.cache/constellation), the test images
// (hack/build-test-images.sh) and the node image. logf reports progress.
func Prepare(ctx context.Context, logf func(string, ...any)) (*Artifacts, error) {
	prepareOnce.Do(func() { prepared, prepareErr = prepare(ctx, logf) })
	return prepared, prepareErr
}

func prepare(ctx context.Context, logf func(string, ...any)) (*Artifacts, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("cst-e2e-artifacts-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	artifactsDir.Store(dir)
	a := &Artifacts{Root: root, Dir: dir, Images: DefaultImages}
	if a.Init, err = hostTools(); err != nil {
		return nil, err
	}
	a.Agent = filepath.Join(dir, "constellation-agent")
	a.NodeInit = filepath.Join(dir, "nodeinit")
	a.Ctl = filepath.Join(dir, "ctl")
	start := time.Now()
	version := "e2e-" + gitDescribe(root)
	for _, b := range []struct{ out, pkg string }{
		{a.Agent, "./cmd/constellation-agent"},
		{a.NodeInit, "./test/e2e/nodeinit"},
		{a.Ctl, "./cmd/ctl"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
			"-ldflags", "-X github.com/constellation-sh/constellation/pkg/agent.Version="+version,
			"-o", b.out, b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	logf("harness: built agent, ctl, nodeinit in %s", time.Since(start).Round(time.Millisecond))

	out, err := run(ctx, root, filepath.Join(root, "hack/traefik.sh"))
	if err != nil {
		return nil, fmt.Errorf("hack/traefik.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	a.Traefik, err = filepath.EvalSymlinks(lines[len(lines)-1])
	if err != nil {
		return nil, fmt.Errorf("traefik binary: %w", err)
	}
	if _, err := run(ctx, root, filepath.Join(root, "hack/build-test-images.sh")); err != nil {
		return nil, fmt.Errorf("hack/build-test-images.sh: %w", err)
	}
	for _, img := range a.Images {
		// build-test-images.sh skips an image whose inputs are missing (redis:7 without
		// hack/redis.sh); say which, rather than docker save's "reference does not exist".
		if _, err := run(ctx, root, "docker", "image", "inspect", "--format", "{{.Id}}", img); err != nil {
			return nil, fmt.Errorf("test image %s was not built (hack/build-test-images.sh skips it when what it needs is missing: run `make test-deps`): %w", img, err)
		}
	}
	a.ImagesTar = filepath.Join(dir, "images.tar")
	if _, err := run(ctx, root, "docker", append([]string{"save", "-o", a.ImagesTar}, a.Images...)...); err != nil {
		return nil, err
	}
	if a.NodeImage, err = buildNodeImage(ctx); err != nil {
		return nil, err
	}
	logf("harness: artifacts ready in %s (traefik %s, node image %s)", time.Since(start).Round(time.Millisecond), a.Traefik, a.NodeImage)
	return a, nil
}

// RepoRoot finds the module's top directory from the working directory.
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/constellation-sh/constellation\n")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("harness: not inside the constellation module")
		}
		d = parent
	}
}

func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

// nodeRootRecipe is the node image's file system: directories, the merged-/usr symlinks, the
// alternatives links iptables needs, and minimal passwd/group files. Everything else comes from
// the host's /usr, mounted read-only, so dockerd, containerd, runc, iptables and tc match the host.
func buildNodeImage(ctx context.Context) (string, error) {
	alts, err := os.ReadDir("/etc/alternatives")
	if err != nil {
		return "", fmt.Errorf("node image: /etc/alternatives: %w", err)
	}
	var links []string
	h := sha256.New()
	fmt.Fprintln(h, "node-root-v1")
	for _, e := range alts {
		target, err := os.Readlink(filepath.Join("/etc/alternatives", e.Name()))
		if err != nil || !strings.HasPrefix(target, "/usr/") {
			continue
		}
		links = append(links, e.Name()+"="+target)
		fmt.Fprintln(h, e.Name(), target)
	}
	image := "constellation-e2e/node:" + hex.EncodeToString(h.Sum(nil))[:12]
	if _, err := run(ctx, "", "docker", "image", "inspect", image); err == nil {
		return image, nil
	}
	tmp, err := os.MkdirTemp("", "cst-e2e-noderoot-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	r := filepath.Join(tmp, "root")
	for _, d := range []string{"etc/alternatives", "etc/constellation", "var/lib/docker", "var/lib/constellation", "var/log/e2e",
		"run", "tmp", "proc", "sys", "dev", "root", "usr", "opt/constellation"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			return "", err
		}
	}
	for name, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64", "var/run": "../run"} {
		if err := os.Symlink(target, filepath.Join(r, name)); err != nil {
			return "", err
		}
	}
	for _, l := range links {
		name, target, _ := strings.Cut(l, "=")
		if err := os.Symlink(target, filepath.Join(r, "etc/alternatives", name)); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":         "root:x:0:\ndocker:x:999:\n",
		"etc/nsswitch.conf": "hosts: files dns\n",
		"etc/hosts":         "", "etc/resolv.conf": "", "etc/hostname": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", `tar -C "$1" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'LABEL constellation.e2e.image=1' - "$2"`, "sh", r, image)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("node image: docker import: %w\n%s", err, out)
	}
	return image, nil
}

// run runs a command and returns its stdout; the error carries stderr.
func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// hostTools checks that the host's /usr has what a node runs (the nodes mount it read-only) and
// returns docker-init's path.
func hostTools() (string, error) {
	var missing []string
	for _, tool := range []string{"dockerd", "containerd", "runc", "iptables", "ip", "tc"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			missing = append(missing, tool)
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err != nil || !strings.HasPrefix(real, "/usr/") {
			missing = append(missing, tool+" (not under /usr: "+p+")")
		}
	}
	init := ""
	for _, p := range []string{"/usr/bin/docker-init", "/usr/libexec/docker/docker-init", "/usr/sbin/docker-init"} {
		if _, err := os.Stat(p); err == nil {
			init = p
			break
		}
	}
	if init == "" {
		missing = append(missing, "docker-init")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("harness: the node containers run the host's /usr, which lacks %s (Debian: apt-get install docker.io iptables iproute2)", strings.Join(missing, ", "))
	}
	return init, nil
}
