package docker

import (
	"os"

	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// defaultLogConfig is the log driver of a container whose spec names none: json-file, rotated,
// so that `ctl logs` can read it and a chatty container cannot fill the node's disk.
func defaultLogConfig() container.LogConfig {
	return container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "2"}}
}

// applyContainerOptions sets spec's container options (v1.ContainerOptions) and hostIPC on the
// create configuration. Labels under the agent's prefix are refused by validation; the agent's
// own labels are set after these anyway, so they always win.
func applyContainerOptions(sp *v1.ServiceSpec, cfg *container.Config, hc *container.HostConfig) {
	o := &sp.ContainerOptions
	cfg.User = o.User
	cfg.WorkingDir = o.WorkingDir
	cfg.StopSignal = o.StopSignal
	if g := o.StopGracePeriod; g != nil {
		secs := int(g.Duration.Seconds())
		cfg.StopTimeout = &secs
	}
	for k, v := range o.Labels {
		cfg.Labels[k] = v
	}
	if sp.HostIPC {
		hc.IpcMode = container.IPCModeHost
	}
	for _, d := range o.Devices {
		m := container.DeviceMapping{PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: d.Permissions}
		if m.PathInContainer == "" {
			m.PathInContainer = d.HostPath
		}
		if m.CgroupPermissions == "" {
			m.CgroupPermissions = "rwm"
		}
		hc.Devices = append(hc.Devices, m)
	}
	if len(o.Sysctls) > 0 {
		hc.Sysctls = make(map[string]string, len(o.Sysctls))
		for k, v := range o.Sysctls {
			hc.Sysctls[k] = v
		}
	}
	for _, t := range o.Tmpfs {
		m := mount.Mount{Type: mount.TypeTmpfs, Target: t.Target}
		if t.SizeMB > 0 || t.Mode != 0 {
			m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: t.SizeMB << 20, Mode: os.FileMode(t.Mode)}
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	hc.ReadonlyRootfs = o.ReadOnlyRootFilesystem
	for _, u := range o.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, h := range o.ExtraHosts {
		hc.ExtraHosts = append(hc.ExtraHosts, h.Host+":"+h.IP)
	}
	if o.Init {
		t := true
		hc.Init = &t
	}
	if o.ShmSizeMB > 0 {
		hc.ShmSize = o.ShmSizeMB << 20
	}
	if l := o.Logging; l != nil {
		hc.LogConfig = container.LogConfig{Type: l.Driver}
		if len(l.Options) > 0 {
			hc.LogConfig.Config = make(map[string]string, len(l.Options))
			for k, v := range l.Options {
				hc.LogConfig.Config[k] = v
			}
		}
	}
}

// hostPortOf is the host port a port binding asks for: its hostPort, or "" (ephemeral).
func hostPortOf(p v1.ServicePort) string {
	if p.HostPort > 0 {
		return strconv.Itoa(int(p.HostPort))
	}
	return ""
}
