// A service's deploy section and scale (replicas, placement, resources, restart and update policies)
// and its container options (user, working_dir, sysctls, ulimits, init, read_only, logging, ...).

package compose

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

var nodeLabelRE = regexp.MustCompile(`^node\.labels\.([A-Za-z0-9_./-]+)\s*==\s*(\S+)$`)

func (c *converter) deploy(sp string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	if sc.Scale != nil {
		n := int32(*sc.Scale)
		spec.Replicas = &n
	}
	d := sc.Deploy
	if d == nil {
		return
	}
	dp := sp + ".deploy"
	switch d.Mode {
	case "", "replicated":
	case "global":
		spec.Mode = v1.ModeGlobal
	default:
		c.note(dp+".mode", Unsupported, "%q needs Jobs", d.Mode)
	}
	if d.Replicas != nil {
		if spec.Mode == v1.ModeGlobal {
			c.note(dp+".replicas", Unsupported, "with mode global")
		} else {
			n := int32(*d.Replicas)
			spec.Replicas = &n
		}
	}
	if spec.Mode == v1.ModeGlobal {
		spec.Replicas = nil
	}
	if l := d.Resources.Limits; l != nil {
		r := &v1.Resources{}
		if l.NanoCPUs > 0 {
			r.CPUs = strconv.FormatFloat(float64(l.NanoCPUs), 'f', -1, 32)
		}
		if l.MemoryBytes > 0 {
			r.MemoryMB = max(mib(l.MemoryBytes), 6)
		}
		if l.Pids > 0 {
			c.note(dp+".resources.limits.pids", Unsupported, "")
		}
		if len(l.Devices) > 0 {
			c.note(dp+".resources.limits.devices", Unsupported, "")
		}
		if r.CPUs != "" || r.MemoryMB > 0 {
			spec.Resources = r
		}
	}
	if rv := d.Resources.Reservations; rv != nil {
		if len(rv.Devices) > 0 {
			c.note(dp+".resources.reservations.devices", Unsupported, "GPU reservations: use devices (e.g. /dev/dri) with host access")
		}
		if rv.NanoCPUs > 0 || rv.MemoryBytes > 0 {
			c.note(dp+".resources.reservations", Unsupported, "scheduling does not reserve resources")
		}
	}
	for i, con := range d.Placement.Constraints {
		cp := fmt.Sprintf("%s.placement.constraints[%d]", dp, i)
		m := nodeLabelRE.FindStringSubmatch(strings.TrimSpace(con))
		if m == nil {
			c.note(cp, Unsupported, "%q: only node.labels.KEY == VALUE", con)
			continue
		}
		if spec.Placement == nil {
			spec.Placement = &v1.Placement{}
		}
		if spec.Placement.NodeSelector == nil {
			spec.Placement.NodeSelector = map[string]string{}
		}
		spec.Placement.NodeSelector[m[1]] = m[2]
	}
	if d.Placement.MaxReplicas > 0 {
		if spec.Placement == nil {
			spec.Placement = &v1.Placement{}
		}
		spec.Placement.MaxPerNode = int32(d.Placement.MaxReplicas)
	}
	if len(d.Placement.Preferences) > 0 {
		c.note(dp+".placement.preferences", Unsupported, "replicas are spread over nodes already")
	}
	if u := d.UpdateConfig; u != nil {
		us := &v1.UpdateStrategy{}
		if u.Parallelism != nil && *u.Parallelism > 0 {
			n := int32(*u.Parallelism)
			us.MaxUnavailable = &n
		}
		switch u.Order {
		case "":
		case "start-first":
			us.Order = v1.StartFirst
		case "stop-first":
			us.Order = v1.StopFirst
		default:
			c.note(dp+".update_config.order", Unsupported, "%q", u.Order)
		}
		if spec.Mode == v1.ModeGlobal && us.Order == v1.StartFirst {
			c.note(dp+".update_config.order", Unsupported, "start-first with mode global: a node runs one replica")
			us.Order = ""
		}
		if u.Delay != 0 || u.FailureAction != "" || u.Monitor != 0 || u.MaxFailureRatio != 0 {
			c.note(dp+".update_config", Unsupported, "delay, failure_action, monitor, max_failure_ratio: a rollout waits for health and stops on failure")
		}
		if us.MaxUnavailable != nil || us.Order != "" {
			spec.Update = us
		}
	}
	if d.RollbackConfig != nil {
		c.note(dp+".rollback_config", Unsupported, "roll back with ctl rollout undo")
	}
	if d.RestartPolicy != nil && d.RestartPolicy.Condition != "" && d.RestartPolicy.Condition != "any" {
		c.note(dp+".restart_policy", Unsupported, "Constellation restarts every container that stops")
	}
	if d.EndpointMode != "" && d.EndpointMode != "vip" {
		c.note(dp+".endpoint_mode", Unsupported, "Services have a mesh virtual IP")
	}
}

func (c *converter) containerOptions(sp string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	o := &spec.ContainerOptions
	o.User = sc.User
	o.WorkingDir = sc.WorkingDir
	if len(sc.Sysctls) > 0 {
		o.Sysctls = map[string]string{}
		for k, v := range sc.Sysctls {
			if spec.Network != nil && strings.HasPrefix(k, "net.") {
				c.note(sp+".sysctls."+k, Unsupported, "net.* with network_mode service: set it on the owner")
				continue
			}
			o.Sysctls[k] = v
		}
		if len(o.Sysctls) == 0 {
			o.Sysctls = nil
		}
	}
	o.ReadOnlyRootFilesystem = sc.ReadOnly
	for _, n := range sortedKeys(sc.Ulimits) {
		u := sc.Ulimits[n]
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		if soft > hard && hard != -1 {
			c.note(sp+".ulimits."+n, Unsupported, "soft %d above hard %d", soft, hard)
			continue
		}
		o.Ulimits = append(o.Ulimits, v1.Ulimit{Name: n, Soft: soft, Hard: hard})
	}
	for _, host := range sortedKeys(sc.ExtraHosts) {
		for _, ip := range sc.ExtraHosts[host] {
			o.ExtraHosts = append(o.ExtraHosts, v1.ExtraHost{Host: host, IP: strings.Trim(ip, "[]")})
		}
	}
	if sc.Init != nil {
		o.Init = *sc.Init
	}
	o.StopSignal = sc.StopSignal
	if g := sc.StopGracePeriod; g != nil {
		d := time.Duration(*g)
		if r := d.Round(time.Second); r != d {
			c.note(sp+".stop_grace_period", Changed, "%s rounded to %s (whole seconds)", d, r)
			d = r
		}
		if d > time.Hour {
			c.note(sp+".stop_grace_period", Changed, "%s lowered to 1h", d)
			d = time.Hour
		}
		o.StopGracePeriod = &v1.Duration{Duration: d}
	}
	if sc.ShmSize > 0 {
		o.ShmSizeMB = mib(sc.ShmSize)
	}
	if l := sc.Logging; l != nil && (l.Driver != "" || len(l.Options) > 0) {
		drv := l.Driver
		if drv == "" {
			drv = "json-file"
		}
		o.Logging = &v1.Logging{Driver: drv}
		if len(l.Options) > 0 {
			o.Logging.Options = map[string]string{}
			for k, v := range l.Options {
				o.Logging.Options[k] = v
			}
		}
	}
	if sc.MemLimit > 0 && spec.Resources == nil {
		spec.Resources = &v1.Resources{MemoryMB: max(mib(sc.MemLimit), 6)}
	}
	if sc.CPUS > 0 {
		if spec.Resources == nil {
			spec.Resources = &v1.Resources{}
		}
		if spec.Resources.CPUs == "" {
			spec.Resources.CPUs = strconv.FormatFloat(float64(sc.CPUS), 'f', -1, 32)
		}
	}
}
