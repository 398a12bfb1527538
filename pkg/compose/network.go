// A service's networking and privileges: network_mode, networks and their aliases, pid, ipc,
// privileged, capabilities and devices (converter.network).

package compose

import (
	"fmt"
	"path"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func (c *converter) network(sp string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	switch nm := sc.NetworkMode; {
	case nm == "" || nm == "bridge" || nm == "default":
	case nm == "host":
		spec.HostNetwork, spec.HostAccess = true, true
		c.note(sp+".network_mode", Changed, "host is host access: spec.hostAccess set")
	case strings.HasPrefix(nm, "service:"):
		owner := strings.TrimPrefix(nm, "service:")
		if t, ok := c.names[owner]; ok {
			spec.Network = &v1.NetworkSpec{Mode: v1.NetworkModeServicePrefix + t}
		} else {
			c.note(sp+".network_mode", Unsupported, "%q: no such service", nm)
		}
	default:
		c.note(sp+".network_mode", Unsupported, "%q", nm)
	}
	if spec.Network != nil || spec.HostNetwork {
		// the namespace owner's networks apply; published ports are the owner's too
		for i := range spec.Ports {
			if spec.Ports[i].HostPort != 0 {
				c.note(fmt.Sprintf("%s.ports[%d]", sp, i), Unsupported, "a host port with network_mode: publish it on the namespace owner")
				spec.Ports[i].HostPort = 0
			}
		}
	}
	for _, n := range sortedKeys(sc.Networks) {
		np := sp + ".networks." + n
		cfg := sc.Networks[n]
		if n == "default" {
			continue
		}
		if spec.Network != nil || spec.HostNetwork {
			c.note(np, Unsupported, "networks with network_mode")
			continue
		}
		real := n
		if nw, ok := c.p.Networks[n]; ok && nw.Name != "" && bool(nw.External) {
			real = nw.Name
		}
		if real == "host" || real == "none" || !dockerNameRE.MatchString(real) {
			c.note(np, Unsupported, "network name %q", real)
			continue
		}
		spec.Networks = append(spec.Networks, real)
		if cfg != nil {
			if len(cfg.Aliases) > 0 {
				c.note(np+".aliases", Unsupported, "a Service resolves by its name on the mesh")
			}
			if cfg.Ipv4Address != "" || cfg.Ipv6Address != "" {
				c.note(np+".ipv4_address", Unsupported, "addresses come from the mesh")
			}
		}
	}
	switch sc.Pid {
	case "":
	case "host":
		spec.HostPID, spec.HostAccess = true, true
		c.note(sp+".pid", Changed, "host is host access: spec.hostAccess set")
	default:
		c.note(sp+".pid", Unsupported, "%q", sc.Pid)
	}
	switch sc.Ipc {
	case "", "private":
	case "host":
		spec.HostIPC, spec.HostAccess = true, true
		c.note(sp+".ipc", Changed, "host is host access: spec.hostAccess set")
	default:
		c.note(sp+".ipc", Unsupported, "%q", sc.Ipc)
	}
	if sc.Privileged {
		spec.Privileged, spec.HostAccess = true, true
		c.note(sp+".privileged", Changed, "privileged is host access: spec.hostAccess set (the agent must allow it)")
	}
	for _, cp := range sc.CapAdd {
		n := v1.NormalizeCapability(cp)
		spec.CapAdd = append(spec.CapAdd, n)
		if n == "ALL" || !v1.IsDefaultCapability(n) {
			spec.HostAccess = true
		}
	}
	for _, cp := range sc.CapDrop {
		spec.CapDrop = append(spec.CapDrop, v1.NormalizeCapability(cp))
	}
	for i, d := range sc.Devices {
		dp := fmt.Sprintf("%s.devices[%d]", sp, i)
		if !strings.HasPrefix(d.Source, "/") {
			c.note(dp, Unsupported, "%q: CDI devices", d.Source)
			continue
		}
		dev := v1.Device{HostPath: path.Clean(d.Source)}
		if d.Target != "" && d.Target != d.Source {
			dev.ContainerPath = path.Clean(d.Target)
		}
		if d.Permissions != "" && d.Permissions != "rwm" {
			dev.Permissions = d.Permissions
		}
		spec.Devices = append(spec.Devices, dev)
		spec.HostAccess = true
	}
}
