package v1

import (
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ContainerOptions are the per-container settings of Docker (and Compose) that a stack needs
// beyond image, command and environment. They are inlined in ServiceSpec (spec.user, ...). Every
// one is part of the spec hash when set, and omitted from it when not, so that a Service that
// does not use them keeps its hash. Names follow Kubernetes where it has one, Compose otherwise.
type ContainerOptions struct {
	// User runs the container's process as "uid", "uid:gid", "name" or "name:group" (Compose's
	// user, Docker's --user). Default "": the image's USER.
	User string `json:"user,omitempty"`
	// WorkingDir is the process's working directory, an absolute path (Compose's working_dir).
	// Default "": the image's WORKDIR.
	WorkingDir string `json:"workingDir,omitempty"`
	// Devices maps host devices into the container (Compose's devices). A device is host
	// access: it needs spec.hostAccess, and --security.allowHostAccess or the device's path in
	// --security.hostPaths. Default none.
	Devices []Device `json:"devices,omitempty"`
	// Sysctls sets namespaced kernel parameters ("net.core.somaxconn": "1024"; Compose's
	// sysctls). Docker refuses the ones that are not namespaced, and net.* with hostNetwork.
	// Default none.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Tmpfs mounts memory-backed file systems (Compose's tmpfs and volumes of type tmpfs).
	// Default none.
	Tmpfs []TmpfsMount `json:"tmpfs,omitempty"`
	// ReadOnlyRootFilesystem mounts the image's file system read-only (Compose's read_only);
	// volumes and tmpfs stay writable. Default false.
	ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem,omitempty"`
	// Ulimits sets resource limits of the process (Compose's ulimits). Default: Docker's.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	// ExtraHosts adds lines to the container's /etc/hosts (Compose's extra_hosts). Default none.
	ExtraHosts []ExtraHost `json:"extraHosts,omitempty"`
	// Init runs Docker's init (tini) as PID 1, which reaps zombies and forwards signals
	// (Compose's init). Default false.
	Init bool `json:"init,omitempty"`
	// StopSignal is the signal that asks the process to stop ("SIGQUIT", "SIGINT", "15";
	// Compose's stop_signal). Default "": the image's STOPSIGNAL, else SIGTERM.
	StopSignal string `json:"stopSignal,omitempty"`
	// StopGracePeriod is how long the agent waits after the stop signal before SIGKILL
	// (Compose's stop_grace_period), whole seconds. Default nil: the agent's stop timeout (10s).
	StopGracePeriod *Duration `json:"stopGracePeriod,omitempty"`
	// ShmSizeMB is the size of /dev/shm in MiB (Compose's shm_size). Default 0: Docker's 64 MiB.
	ShmSizeMB int64 `json:"shmSizeMB,omitempty"`
	// Labels are Docker labels on the containers (Compose's labels). Keys under the agent's own
	// prefix "constellation." are refused: the agent finds and trusts its containers by them.
	// Default none.
	Labels map[string]string `json:"labels,omitempty"`
	// Logging picks the Docker log driver (Compose's logging). Default nil: json-file with
	// max-size 10m and max-file 2. `ctl logs` needs a driver Docker can read back (json-file,
	// local, journald, or any driver with Docker's dual logging, on by default since 20.10).
	Logging *Logging `json:"logging,omitempty"`
}

// Device maps one host device into the container.
type Device struct {
	// HostPath is the device on the node ("/dev/dri/renderD128"). Required.
	HostPath string `json:"hostPath"`
	// ContainerPath is where it appears in the container. Default: hostPath.
	ContainerPath string `json:"containerPath,omitempty"`
	// Permissions is a combination of r (read), w (write) and m (mknod). Default "rwm".
	Permissions string `json:"permissions,omitempty"`
}

// TmpfsMount is one tmpfs mount.
type TmpfsMount struct {
	// Target is the mount point, a clean absolute path. Required.
	Target string `json:"target"`
	// SizeMB caps its size in MiB. Default 0: Docker's (half the node's memory).
	SizeMB int64 `json:"sizeMB,omitempty"`
	// Mode is the mount point's permission bits (0o1777; in JSON a decimal number: 1023).
	// Default 0: Docker's 1777.
	Mode uint32 `json:"mode,omitempty"`
}

// Ulimit is one resource limit ("nofile" 65536).
type Ulimit struct {
	// Name is the limit without "RLIMIT_": nofile, nproc, core, memlock, stack, ... Required.
	Name string `json:"name"`
	// Soft and Hard limits; -1 is unlimited. Soft must not exceed Hard.
	Soft int64 `json:"soft"`
	Hard int64 `json:"hard"`
}

// ExtraHost is one /etc/hosts line.
type ExtraHost struct {
	// Host is the name. Required.
	Host string `json:"host"`
	// IP is an IPv4 or IPv6 address, or "host-gateway" (the node's address on the bridge).
	IP string `json:"ip"`
}

// Logging is a Docker log driver and its options.
type Logging struct {
	// Driver is the log driver ("json-file", "local", "journald", "syslog", "gelf", ...).
	// Required.
	Driver string `json:"driver"`
	// Options are the driver's options ("max-size": "10m"). Default none (the driver's own).
	Options map[string]string `json:"options,omitempty"`
}

// ServiceMode is spec.mode.
type ServiceMode string

// Service modes.
const (
	ModeReplicated ServiceMode = "replicated"
	ModeGlobal     ServiceMode = "global"
)

// IsGlobal reports whether the Service runs one replica per eligible node.
func (s *ServiceSpec) IsGlobal() bool { return s.Mode == ModeGlobal }

// ReservedLabelPrefix is the prefix of the labels the agent puts on its containers; spec.labels
// may not use it.
const ReservedLabelPrefix = "constellation."

// HostPortKey is "port/protocol", how host ports are compared.
func HostPortKey(port int32, proto Protocol) string {
	if proto == "" {
		proto = ProtocolTCP
	}
	return strconv.Itoa(int(port)) + "/" + string(proto)
}

// HostPorts returns the node ports the replicas of s hold, as HostPortKey values, sorted: the
// hostPort of each port, and with hostNetwork every container port (the container listens on
// the node itself). Nil: none, any number of replicas fit on one node.
func (s *ServiceSpec) HostPorts() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range s.Ports {
		var k string
		switch {
		case s.HostNetwork:
			k = HostPortKey(p.ContainerPort, p.protocol())
		case p.HostPort > 0:
			k = HostPortKey(p.HostPort, p.protocol())
		default:
			continue
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

var (
	userRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$`)
	sysctlRE     = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$`)
	signalNameRE = regexp.MustCompile(`^(SIG)?[A-Z][A-Z0-9+-]{1,15}$`)
	logDriverRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_./:-]{0,127}$`)
	hostAliasRE  = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$`)
)

// ulimitNames are the limits Docker knows (moby's pkg/ulimit).
var ulimitNames = map[string]bool{
	"core": true, "cpu": true, "data": true, "fsize": true, "locks": true, "memlock": true,
	"msgqueue": true, "nice": true, "nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true,
}

func cleanAbs(p string) bool { return strings.HasPrefix(p, "/") && filepath.Clean(p) == p }

// validateContainerOptions checks the container options and the port hostPorts. Host access
// (devices, hostIPC) is decided by pkg/hostaccess; this is only their shape.
func validateContainerOptions(sp path, s *ServiceSpec) ErrorList {
	var errs ErrorList
	o := &s.ContainerOptions
	if o.User != "" && !userRE.MatchString(o.User) {
		errs.add(sp.child("user").String(), "must be \"uid\", \"uid:gid\", \"name\" or \"name:group\", got %q", o.User)
	}
	if o.WorkingDir != "" && !cleanAbs(o.WorkingDir) {
		errs.add(sp.child("workingDir").String(), "must be a clean absolute path, got %q", o.WorkingDir)
	}
	devs := map[string]bool{}
	for i, d := range o.Devices {
		dp := sp.child("devices").index(i)
		if !cleanAbs(d.HostPath) {
			errs.add(dp.child("hostPath").String(), "must be a clean absolute path like \"/dev/dri\", got %q", d.HostPath)
		}
		cp := d.ContainerPath
		if cp == "" {
			cp = d.HostPath
		} else if !cleanAbs(cp) {
			errs.add(dp.child("containerPath").String(), "must be a clean absolute path, got %q", d.ContainerPath)
		}
		if devs[cp] {
			errs.add(dp.child("containerPath").String(), "duplicate device path %q", cp)
		}
		devs[cp] = true
		if d.Permissions != "" && !validDevicePerms(d.Permissions) {
			errs.add(dp.child("permissions").String(), "must be a combination of r, w and m, got %q", d.Permissions)
		}
	}
	for k, v := range o.Sysctls {
		if !sysctlRE.MatchString(k) {
			errs.add(sp.child("sysctls").key(k).String(), "must be a dotted kernel parameter like \"net.core.somaxconn\"")
		}
		if strings.ContainsAny(v, "\n\x00") {
			errs.add(sp.child("sysctls").key(k).String(), "value must be one line")
		}
		if s.HostNetwork && strings.HasPrefix(k, "net.") {
			errs.add(sp.child("sysctls").key(k).String(), "net.* sysctls cannot be set with hostNetwork (they would change the node's own)")
		}
		if s.Network != nil && strings.HasPrefix(k, "net.") {
			errs.add(sp.child("sysctls").key(k).String(), "net.* sysctls cannot be set with spec.network (the namespace is the owner's: set them there)")
		}
	}
	targets := map[string]bool{}
	for _, v := range s.Volumes {
		targets[v.Target] = true
	}
	for i, t := range o.Tmpfs {
		tp := sp.child("tmpfs").index(i)
		if !cleanAbs(t.Target) || t.Target == "/" {
			errs.add(tp.child("target").String(), "must be a clean absolute path other than /, got %q", t.Target)
		} else if targets[t.Target] {
			errs.add(tp.child("target").String(), "duplicate mount target %q (also a volume or another tmpfs)", t.Target)
		}
		targets[t.Target] = true
		if t.SizeMB < 0 {
			errs.add(tp.child("sizeMB").String(), "must not be negative, got %d", t.SizeMB)
		}
		if t.Mode > 0o7777 {
			errs.add(tp.child("mode").String(), "must be permission bits up to 0o7777, got %#o", t.Mode)
		}
	}
	ulimits := map[string]bool{}
	for i, u := range o.Ulimits {
		up := sp.child("ulimits").index(i)
		if !ulimitNames[u.Name] {
			errs.add(up.child("name").String(), "must be one of %s, got %q", strings.Join(sortedKeys(ulimitNames), ", "), u.Name)
		}
		if ulimits[u.Name] {
			errs.add(up.child("name").String(), "duplicate ulimit %q", u.Name)
		}
		ulimits[u.Name] = true
		if u.Soft < -1 || u.Hard < -1 {
			errs.add(up.String(), "limits must be -1 (unlimited) or more, got soft %d hard %d", u.Soft, u.Hard)
		} else if u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
			errs.add(up.child("soft").String(), "must not exceed hard (%d), got %d", u.Hard, u.Soft)
		}
	}
	for i, h := range o.ExtraHosts {
		hp := sp.child("extraHosts").index(i)
		if !hostAliasRE.MatchString(h.Host) {
			errs.add(hp.child("host").String(), "must be a host name, got %q", h.Host)
		}
		if h.IP != "host-gateway" && !isIP(h.IP) {
			errs.add(hp.child("ip").String(), "must be an IP address or \"host-gateway\", got %q", h.IP)
		}
	}
	if o.StopSignal != "" {
		if n, err := strconv.Atoi(o.StopSignal); err == nil {
			if n < 1 || n > 64 {
				errs.add(sp.child("stopSignal").String(), "signal number must be 1-64, got %d", n)
			}
		} else if !signalNameRE.MatchString(o.StopSignal) {
			errs.add(sp.child("stopSignal").String(), "must be a signal name like \"SIGQUIT\" or a number, got %q", o.StopSignal)
		}
	}
	if g := o.StopGracePeriod; g != nil {
		switch {
		case g.Duration < 0:
			errs.add(sp.child("stopGracePeriod").String(), "must not be negative, got %s", g.Duration)
		case g.Duration%time.Second != 0:
			errs.add(sp.child("stopGracePeriod").String(), "must be whole seconds (Docker's stop timeout), got %s", g.Duration)
		case g.Duration > time.Hour:
			errs.add(sp.child("stopGracePeriod").String(), "must be at most 1h, got %s", g.Duration)
		}
	}
	if o.ShmSizeMB < 0 {
		errs.add(sp.child("shmSizeMB").String(), "must not be negative, got %d", o.ShmSizeMB)
	}
	for k, v := range o.Labels {
		lp := sp.child("labels").key(k).String()
		switch {
		case k == "" || strings.ContainsAny(k, " \t\r\n=\x00"):
			errs.add(lp, "invalid label key: must be non-empty, without spaces or '='")
		case strings.HasPrefix(strings.ToLower(k), ReservedLabelPrefix):
			errs.add(lp, "the prefix %q is reserved for the agent's own labels", ReservedLabelPrefix)
		}
		if strings.ContainsAny(v, "\x00") || len(v) > 4096 {
			errs.add(lp, "value must be at most 4096 bytes without NUL")
		}
	}
	if l := o.Logging; l != nil {
		lp := sp.child("logging")
		if !logDriverRE.MatchString(l.Driver) {
			errs.add(lp.child("driver").String(), "must name a Docker log driver like \"json-file\", got %q", l.Driver)
		}
		for k := range l.Options {
			if k == "" || strings.ContainsAny(k, " \t\r\n=") {
				errs.add(lp.child("options").key(k).String(), "invalid option name")
			}
		}
	}

	for i, p := range s.Ports {
		pp := sp.child("ports").index(i).child("hostPort")
		switch {
		case p.HostPort == 0:
		case p.HostPort < 1 || p.HostPort > 65535:
			errs.add(pp.String(), "must be 1-65535, got %d", p.HostPort)
		case s.HostNetwork:
			errs.add(pp.String(), "must be empty with hostNetwork (the container port is the node's port)")
		case s.Network != nil:
			errs.add(pp.String(), "must be empty with spec.network (the namespace owner publishes the ports)")
		}
	}
	hp := map[string]int{}
	for i, p := range s.Ports {
		if p.HostPort < 1 || p.HostPort > 65535 {
			continue
		}
		k := HostPortKey(p.HostPort, p.protocol())
		if j, dup := hp[k]; dup {
			errs.add(sp.child("ports").index(i).child("hostPort").String(), "duplicate host port %s (also spec.ports[%d])", k, j)
		}
		hp[k] = i
	}
	return errs
}

func validDevicePerms(p string) bool {
	if len(p) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range p {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
