package hostaccess

import (
	"errors"
	"os/exec"
	"path"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func bind(src string) []v1.VolumeMount { return []v1.VolumeMount{{Source: src, Target: "/mnt"}} }

// TestCheck is every refused path and option with its field path, and what lets each through.
func TestCheck(t *testing.T) {
	const dataDir = "/srv/constellation"
	deny := Policy{DataDir: dataDir}
	allow := Policy{DataDir: dataDir, AllowHostAccess: true}
	type want struct {
		field string
		// parts the message must hold (the fix named).
		parts []string
	}
	optIn := func(field string) []want { return []want{{field, []string{FixOptIn}}} }
	both := func(field, fix string) []want { return []want{{field, []string{FixOptIn, fix}}} }
	flag := func(field, fix string) []want { return []want{{field, []string{"refused by this agent", fix}}} }
	cases := []struct {
		name string
		pol  Policy
		spec v1.ServiceSpec
		want []want
	}{
		{"nothing of the host", deny, v1.ServiceSpec{Volumes: []v1.VolumeMount{{Source: "data", Target: "/data"}}, CapDrop: []string{"ALL"}}, nil},
		{"default capability added back", deny, v1.ServiceSpec{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE", "cap_chown"}}, nil},

		// Any bind mount is host access: the opt-in alone allows a plain one.
		{"plain bind without opt-in", deny, v1.ServiceSpec{Volumes: bind("/srv/www")}, optIn("spec.volumes[0].source")},
		{"plain bind with opt-in", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/srv/www")}, nil},
		{"/etcfoo is not /etc", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etcfoo")}, nil},
		{"/var/log is not sensitive", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/log/app")}, nil},

		// Sensitive paths: the opt-in and the agent flag (or a listed path).
		{"/ without opt-in", deny, v1.ServiceSpec{Volumes: bind("/")}, both("spec.volumes[0].source", FixAllowPath)},
		{"/ with opt-in", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/ with opt-in and allowHostAccess", allow, v1.ServiceSpec{HostAccess: true, Volumes: bind("/")}, nil},
		{"/ with allowHostAccess but no opt-in", allow, v1.ServiceSpec{Volumes: bind("/")}, optIn("spec.volumes[0].source")},
		{"/etc", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"under /etc", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/ssl/certs")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/etc/../etc", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/../etc")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/srv/../etc/", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/srv/../etc/")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/proc", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/proc")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/sys/fs/cgroup", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/sys/fs/cgroup")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/dev", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/dev")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/boot", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/boot")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/root/.ssh", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/root/.ssh")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/usr/bin", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/usr/bin")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"docker socket", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/run/docker.sock")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"docker socket //", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/run//docker.sock")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"docker socket in /run", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/run/docker.sock")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"any docker.sock", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/home/me/.docker/desktop/docker.sock")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"any containerd.sock", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/srv/k3s/containerd.sock")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/var/lib/docker", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/lib/docker/volumes")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/var/lib holds docker's state", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/lib")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"/var/ (trailing slash)", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"data dir", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind(dataDir)}, flag("spec.volumes[0].source", FixAllowPath)},
		{"under the data dir", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind(dataDir + "/raft.db")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"parent of the data dir", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/srv")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"default data dir even when another is set", deny, v1.ServiceSpec{HostAccess: true, Volumes: bind("/var/lib/constellation")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"second volume", deny, v1.ServiceSpec{HostAccess: true, Volumes: []v1.VolumeMount{{Source: "data", Target: "/a"}, {Source: "/etc", Target: "/b"}}}, flag("spec.volumes[1].source", FixAllowPath)},

		// hostPaths lists what is allowed without allowHostAccess.
		{"listed path", Policy{HostPaths: []string{"/etc/ssl/certs/"}}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/ssl/certs")}, nil},
		{"under a listed path", Policy{HostPaths: []string{"/etc/ssl"}}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/ssl/certs")}, nil},
		{"listed path needs the opt-in", Policy{HostPaths: []string{"/etc/ssl"}}, v1.ServiceSpec{Volumes: bind("/etc/ssl")}, optIn("spec.volumes[0].source")},
		{"parent of a listed path is not listed", Policy{HostPaths: []string{"/etc/ssl"}}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"listed path with .. escapes", Policy{HostPaths: []string{"/etc/ssl"}}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/ssl/../shadow")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"sibling prefix of a listed path", Policy{HostPaths: []string{"/etc/ssl"}}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/sslx")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"relative hostPaths entry is ignored", Policy{HostPaths: []string{"etc"}}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc")}, flag("spec.volumes[0].source", FixAllowPath)},
		{"listed path does not allow privileged", Policy{HostPaths: []string{"/"}}, v1.ServiceSpec{HostAccess: true, Privileged: true}, flag("spec.privileged", FixAllow)},

		// Options.
		{"privileged without opt-in", deny, v1.ServiceSpec{Privileged: true}, both("spec.privileged", FixAllow)},
		{"privileged with opt-in", deny, v1.ServiceSpec{HostAccess: true, Privileged: true}, flag("spec.privileged", FixAllow)},
		{"privileged allowed", allow, v1.ServiceSpec{HostAccess: true, Privileged: true}, nil},
		{"hostNetwork", deny, v1.ServiceSpec{HostAccess: true, HostNetwork: true}, flag("spec.hostNetwork", FixAllow)},
		{"hostPID", deny, v1.ServiceSpec{HostAccess: true, HostPID: true}, flag("spec.hostPID", FixAllow)},
		{"hostPID allowed", allow, v1.ServiceSpec{HostAccess: true, HostPID: true}, nil},
		{"hostIPC", deny, v1.ServiceSpec{HostAccess: true, HostIPC: true}, flag("spec.hostIPC", FixAllow)},
		{"hostIPC without opt-in", deny, v1.ServiceSpec{HostIPC: true}, both("spec.hostIPC", FixAllow)},
		{"hostIPC allowed", allow, v1.ServiceSpec{HostAccess: true, HostIPC: true}, nil},
		{"device without opt-in", deny, v1.ServiceSpec{ContainerOptions: v1.ContainerOptions{Devices: []v1.Device{{HostPath: "/dev/dri"}}}}, both("spec.devices[0].hostPath", FixAllowPath)},
		{"device with opt-in", deny, v1.ServiceSpec{HostAccess: true, ContainerOptions: v1.ContainerOptions{Devices: []v1.Device{{HostPath: "/dev/dri"}}}}, flag("spec.devices[0].hostPath", FixAllowPath)},
		{"device listed", Policy{HostPaths: []string{"/dev/dri"}}, v1.ServiceSpec{HostAccess: true, ContainerOptions: v1.ContainerOptions{Devices: []v1.Device{{HostPath: "/dev/dri/renderD128"}}}}, nil},
		{"device allowed", allow, v1.ServiceSpec{HostAccess: true, ContainerOptions: v1.ContainerOptions{Devices: []v1.Device{{HostPath: "/dev/kvm"}}}}, nil},
		{"capAdd beyond defaults", deny, v1.ServiceSpec{HostAccess: true, CapAdd: []string{"CHOWN", "NET_ADMIN"}}, flag("spec.capAdd[1]", FixAllow)},
		{"capAdd ALL", deny, v1.ServiceSpec{CapAdd: []string{"ALL"}}, both("spec.capAdd[0]", FixAllow)},
		{"capAdd CAP_SYS_ADMIN allowed", allow, v1.ServiceSpec{HostAccess: true, CapAdd: []string{"CAP_SYS_ADMIN"}}, nil},
		{"everything at once", deny, v1.ServiceSpec{Volumes: bind("/"), Privileged: true, HostPID: true, CapAdd: []string{"SYS_PTRACE"}}, []want{
			{"spec.volumes[0].source", []string{FixOptIn, FixAllowPath}},
			{"spec.privileged", []string{FixOptIn, FixAllow}},
			{"spec.hostPID", []string{FixOptIn, FixAllow}},
			{"spec.capAdd[0]", []string{FixOptIn, FixAllow}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.pol.Check(&tc.spec)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tc.want))
			}
			for i, w := range tc.want {
				if errs[i].Field != w.field {
					t.Errorf("error %d field %q, want %q (%s)", i, errs[i].Field, w.field, errs[i].Message)
				}
				for _, p := range w.parts {
					if !strings.Contains(errs[i].Message, p) {
						t.Errorf("error %d %q does not say %q", i, errs[i].Message, p)
					}
				}
			}
		})
	}
}

// TestCheckFixNamesOnlyWhatIsMissing: a refusal that only needs the flag does not ask for the
// opt-in again, and one that only needs the opt-in does not mention the flag.
func TestCheckFixNamesOnlyWhatIsMissing(t *testing.T) {
	errs := Policy{}.Check(&v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc")})
	if len(errs) != 1 || strings.Contains(errs[0].Message, FixOptIn) {
		t.Fatalf("errors %v: should name only the flag", errs)
	}
	errs = Policy{}.Check(&v1.ServiceSpec{Volumes: bind("/srv/www")})
	if len(errs) != 1 || strings.Contains(errs[0].Message, "--security") {
		t.Fatalf("errors %v: should name only the opt-in", errs)
	}
}

// TestCheckNodeNamesItself: the node's refusal says which node refused (agents may be
// configured differently).
func TestCheckNodeNamesItself(t *testing.T) {
	errs := Policy{Node: "n2"}.Check(&v1.ServiceSpec{HostAccess: true, Privileged: true})
	if len(errs) != 1 || !strings.Contains(errs[0].Message, `refused by node "n2"`) {
		t.Fatalf("errors %v", errs)
	}
}

// TestCheckResolvesSymlinksOnTheNode: a harmless-looking source that resolves to a sensitive
// path on the node is refused there; admission (no Resolve) only sees the lexical path.
func TestCheckResolvesSymlinksOnTheNode(t *testing.T) {
	links := map[string]string{"/srv/innocent": "/var/run/docker.sock", "/srv/www": "/srv/www"}
	resolve := func(p string) (string, error) {
		if r, ok := links[p]; ok {
			return r, nil
		}
		return "", errors.New("no such file")
	}
	spec := &v1.ServiceSpec{HostAccess: true, Volumes: bind("/srv/innocent")}
	if errs := (Policy{}).Check(spec); len(errs) != 0 {
		t.Fatalf("lexical check refused %v", errs)
	}
	errs := Policy{Resolve: resolve}.Check(spec)
	if len(errs) != 1 || errs[0].Field != "spec.volumes[0].source" || !strings.Contains(errs[0].Message, `through its symlink to "/var/run/docker.sock"`) {
		t.Fatalf("errors %v", errs)
	}
	// Listing the link alone does not allow its sensitive target.
	if errs := (Policy{Resolve: resolve, HostPaths: []string{"/srv/innocent"}}).Check(spec); len(errs) != 1 {
		t.Fatalf("listed link: errors %v, want the target refused", errs)
	}
	if errs := (Policy{Resolve: resolve, AllowHostAccess: true}).Check(spec); len(errs) != 0 {
		t.Fatalf("allowHostAccess: %v", errs)
	}
	for _, src := range []string{"/srv/www", "/srv/missing"} {
		if errs := (Policy{Resolve: resolve}).Check(&v1.ServiceSpec{HostAccess: true, Volumes: bind(src)}); len(errs) != 0 {
			t.Fatalf("%s: %v", src, errs)
		}
	}
}

func TestSensitive(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "//": true, "/etc": true, "/etc/": true, "/etc/../etc": true, "/tmp/../etc/passwd": true,
		"/var": true, "/var/lib": true, "/var/run": true, "/run/containerd/containerd.sock": true,
		"/srv/docker.sock": true, "/srv": false, "/home/me": false, "/var/log": false, "/opt/app": false,
		"/mnt/data": false, "/etc2": false, "/var/lib/postgresql": false,
	} {
		if got := Sensitive(p, "") != ""; got != want {
			t.Errorf("Sensitive(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestDependencies keeps the package pure: api/v1 and the standard library only.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(imp, ".") && imp != "github.com/constellation-sh/constellation/api/v1" {
			t.Errorf("imports %s", imp)
		}
	}
}

// FuzzCheckPathTricks: however a source is spelled, the check decides as for its cleaned form,
// and nothing that cleans to a path at or under /etc, or to a Docker socket, passes a
// restrictive agent.
func FuzzCheckPathTricks(f *testing.F) {
	for _, s := range []string{"/etc", "/etc/../etc", "/var/run//docker.sock", "/", "/srv/./www/", "/a/../../etc/x", "/etcx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if !strings.HasPrefix(src, "/") {
			return
		}
		spec := &v1.ServiceSpec{HostAccess: true, Volumes: bind(src)}
		cleaned := &v1.ServiceSpec{HostAccess: true, Volumes: bind(path.Clean(src))}
		got, want := len(Policy{}.Check(spec)), len(Policy{}.Check(cleaned))
		if got != want {
			t.Fatalf("%q: %d errors, its clean form %q: %d", src, got, path.Clean(src), want)
		}
		c := path.Clean(src)
		if (c == "/etc" || strings.HasPrefix(c, "/etc/") || strings.HasSuffix(c, "/docker.sock")) && got == 0 {
			t.Fatalf("%q (clean %q) passed", src, c)
		}
	})
}

// TestMessages pins the wording an operator reads.
func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		pol  Policy
		spec v1.ServiceSpec
		want string
	}{
		{Policy{}, v1.ServiceSpec{Volumes: bind("/srv/www")},
			`bind mount of host path "/srv/www": host access refused: set spec.hostAccess: true`},
		{Policy{}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/")},
			`bind mount of host path "/" exposes the host's root file system: refused by this agent: start the agent with --security.allowHostAccess or list the path in --security.hostPaths`},
		{Policy{}, v1.ServiceSpec{Volumes: bind("/var/run/docker.sock")},
			`bind mount of host path "/var/run/docker.sock" exposes a container engine socket (root on the node): host access refused: set spec.hostAccess: true, and start the agent with --security.allowHostAccess or list the path in --security.hostPaths`},
		{Policy{DataDir: "/srv/c"}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/srv")},
			`bind mount of host path "/srv" exposes the agent's data dir (store, keys, tokens) (/srv/c is inside it): refused by this agent: start the agent with --security.allowHostAccess or list the path in --security.hostPaths`},
		{Policy{Node: "n2"}, v1.ServiceSpec{HostAccess: true, Volumes: bind("/etc/ssl")},
			`bind mount of host path "/etc/ssl" exposes host configuration and credentials (it is under /etc): refused by node "n2": start the agent with --security.allowHostAccess or list the path in --security.hostPaths`},
		{Policy{}, v1.ServiceSpec{CapAdd: []string{"cap_sys_admin"}},
			`capability SYS_ADMIN is beyond Docker's default set: host access refused: set spec.hostAccess: true, and start the agent with --security.allowHostAccess`},
	} {
		errs := tc.pol.Check(&tc.spec)
		if len(errs) != 1 || errs[0].Message != tc.want {
			t.Errorf("got %v\nwant %s", errs, tc.want)
		}
	}
}
