package hostaccess

import (
	"fmt"
	"path"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// The flags and the field a refusal names, so that the message says how to fix it.
const (
	FixOptIn     = "set spec.hostAccess: true"
	FixAllow     = "start the agent with --security.allowHostAccess"
	FixAllowPath = "start the agent with --security.allowHostAccess or list the path in --security.hostPaths"
)

// DefaultDataDir is the agent's default --dataDir. It is always sensitive, whatever DataDir
// says, so that a node whose agent runs with another data dir still protects the usual one.
const DefaultDataDir = "/var/lib/constellation"

// Policy is one agent's host-access flags.
type Policy struct {
	// AllowHostAccess is --security.allowHostAccess: Services that opt in may use anything on
	// the host. Default false.
	AllowHostAccess bool
	// HostPaths is --security.hostPaths: host path prefixes that Services opting in may
	// bind-mount even when sensitive. Relative entries are ignored (config validation refuses
	// them). Default none.
	HostPaths []string
	// DataDir is the agent's --dataDir, sensitive with everything under and above it. Default:
	// DefaultDataDir only.
	DataDir string
	// Node names the agent in refusals ("refused by node n1"). Default "": "this agent"
	// (admission).
	Node string
	// Resolve, when set, resolves the symlinks of a host path on the node's own file system
	// (filepath.EvalSymlinks): a bind mount whose source resolves to a sensitive path is
	// sensitive. An error (the path does not exist yet) leaves the lexical path. Default nil:
	// lexical only (admission, which cannot see the nodes' file systems).
	Resolve func(string) (string, error)
}

// sensitiveRoot is a host path that is sensitive with everything under it, and every directory
// above it (mounting /var/lib exposes /var/lib/docker).
type sensitiveRoot struct {
	path, what string
}

var sensitiveRoots = []sensitiveRoot{
	{"/etc", "host configuration and credentials"},
	{"/proc", "the host's kernel and processes"},
	{"/sys", "the host's kernel interfaces"},
	{"/dev", "the host's devices"},
	{"/boot", "the host's kernels and boot loader"},
	{"/root", "root's home directory"},
	// Writable system binaries and libraries are root on the next login or cron run.
	{"/usr", "the host's system binaries and libraries"},
	{"/bin", "the host's system binaries"},
	{"/sbin", "the host's system binaries"},
	{"/lib", "the host's system libraries"},
	{"/lib32", "the host's system libraries"},
	{"/lib64", "the host's system libraries"},
	{"/libx32", "the host's system libraries"},
	// /run holds the Docker, containerd and systemd control sockets; /var/run is its symlink.
	{"/run", "the host's runtime sockets (the Docker socket among them)"},
	{"/var/run", "the host's runtime sockets (the Docker socket among them)"},
	{"/var/lib/docker", "the Docker engine's state"},
	{"/var/lib/containerd", "containerd's state"},
}

// Sensitive reports what host path p (cleaned first) exposes when the agent's data dir is
// dataDir ("the host's root file system", "a container engine socket (root on the node)", ...),
// or "" when it is not sensitive.
func Sensitive(p, dataDir string) string {
	p = clean(p)
	if p == "/" {
		return "the host's root file system"
	}
	base := path.Base(p)
	if strings.HasSuffix(base, "docker.sock") || strings.HasSuffix(base, "containerd.sock") {
		return "a container engine socket (root on the node)"
	}
	roots := sensitiveRoots
	for _, d := range []string{DefaultDataDir, dataDir} {
		if d = clean(d); strings.HasPrefix(d, "/") && d != "/" {
			roots = append(roots[:len(roots):len(roots)], sensitiveRoot{d, "the agent's data dir (store, keys, tokens)"})
		}
	}
	for _, r := range roots {
		switch {
		case p == r.path:
			return fmt.Sprintf("%s (%s)", r.what, r.path)
		case under(p, r.path):
			return fmt.Sprintf("%s (it is under %s)", r.what, r.path)
		}
	}
	for _, r := range roots {
		if under(r.path, p) {
			return fmt.Sprintf("%s (%s is inside it)", r.what, r.path)
		}
	}
	return ""
}

// clean is path.Clean of an absolute path: no "..", no "//", no trailing slash. A relative path
// is returned cleaned and stays relative.
func clean(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean(p)
}

// under reports whether p is strictly below dir (component-wise: /etcfoo is not under /etc).
func under(p, dir string) bool {
	if dir == "/" {
		return p != "/" && strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, dir+"/")
}

// listed reports whether p is one of the HostPaths or below one.
func (pol Policy) listed(p string) bool {
	for _, e := range pol.HostPaths {
		e = clean(e)
		if !strings.HasPrefix(e, "/") {
			continue
		}
		if p == e || under(p, e) {
			return true
		}
	}
	return false
}

func (pol Policy) who() string {
	if pol.Node != "" {
		return fmt.Sprintf("node %q", pol.Node)
	}
	return "this agent"
}

// Check reports every host access of spec that is not allowed under pol, each at its field path
// and naming the fix: the opt-in field, the agent flag, or both. Nil: allowed.
func (pol Policy) Check(spec *v1.ServiceSpec) v1.ErrorList {
	var errs v1.ErrorList
	add := func(field, what string, sensitive bool, fix string) {
		var msg string
		switch {
		case !spec.HostAccess && sensitive:
			msg = fmt.Sprintf("%s: host access refused: %s, and %s", what, FixOptIn, fix)
		case !spec.HostAccess:
			msg = fmt.Sprintf("%s: host access refused: %s", what, FixOptIn)
		case sensitive:
			msg = fmt.Sprintf("%s: refused by %s: %s", what, pol.who(), fix)
		default:
			return
		}
		errs = append(errs, &v1.FieldError{Field: field, Message: msg})
	}
	for i, v := range spec.Volumes {
		if !v.IsBindMount() {
			continue
		}
		field := fmt.Sprintf("spec.volumes[%d].source", i)
		p := clean(v.Source)
		why, target := Sensitive(p, pol.DataDir), p
		if why == "" && pol.Resolve != nil {
			if rp, err := pol.Resolve(p); err == nil && clean(rp) != p {
				if w := Sensitive(rp, pol.DataDir); w != "" {
					why, target = fmt.Sprintf("%s through its symlink to %q", w, clean(rp)), clean(rp)
				}
			}
		}
		refused := why != "" && !pol.AllowHostAccess && !(pol.listed(p) && pol.listed(target))
		what := fmt.Sprintf("bind mount of host path %q", v.Source)
		if why != "" {
			what += " exposes " + why
		}
		add(field, what, refused, FixAllowPath)
	}
	if spec.Privileged {
		add("spec.privileged", "a privileged container is root on the node", !pol.AllowHostAccess, FixAllow)
	}
	if spec.HostNetwork {
		add("spec.hostNetwork", "the node's network namespace", !pol.AllowHostAccess, FixAllow)
	}
	if spec.HostPID {
		add("spec.hostPID", "the node's PID namespace (every process of the host)", !pol.AllowHostAccess, FixAllow)
	}
	if spec.HostIPC {
		add("spec.hostIPC", "the node's IPC namespace (shared memory of every process of the host)", !pol.AllowHostAccess, FixAllow)
	}
	for i, d := range spec.Devices {
		// Devices live under /dev, which is sensitive: allowed by the flag, or by listing the
		// device (or a directory holding it, /dev/dri) in --security.hostPaths.
		p := clean(d.HostPath)
		add(fmt.Sprintf("spec.devices[%d].hostPath", i), fmt.Sprintf("host device %q", d.HostPath),
			!pol.AllowHostAccess && !pol.listed(p), FixAllowPath)
	}
	for i, c := range spec.CapAdd {
		if v1.IsDefaultCapability(c) {
			continue
		}
		add(fmt.Sprintf("spec.capAdd[%d]", i), fmt.Sprintf("capability %s is beyond Docker's default set", v1.NormalizeCapability(c)), !pol.AllowHostAccess, FixAllow)
	}
	return errs
}
