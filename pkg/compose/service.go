// One Compose service mapped to a Service: the top-level fields, the environment (secretKey), the
// healthcheck, and leftover, which reports every field no mapping consumed.

package compose

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// service maps one Compose service. raw (its JSON) is what is left to report: each mapped
// field is marked handled, and whatever remains non-empty is a Note.
func (c *converter) service(name string, sc types.ServiceConfig) *v1.Service {
	sp := "services." + name
	c.handled = map[string]bool{}
	h := func(fields ...string) {
		for _, f := range fields {
			c.handled[f] = true
		}
	}
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = c.names[name]
	spec := &s.Spec
	c.spec = spec
	c.fileMounts(sc)
	h("name", "container_name", "restart", "profiles", "extends", "links")
	if len(sc.Links) > 0 {
		c.note(sp+".links", Changed, "Services resolve by name on the mesh; a link's alias does not (its dependency is kept)")
	}
	if sc.ContainerName != "" {
		c.note(sp+".container_name", Changed, "replicas are named %s-<i> (and resolve as %s on the mesh)", s.Metadata.Name, s.Metadata.Name)
	}
	switch sc.Restart {
	case "", "always", "unless-stopped", "on-failure":
	default:
		c.note(sp+".restart", Unsupported, "%q: Constellation restarts every container that stops", sc.Restart)
	}

	// image
	h("image", "build")
	spec.Image = sc.Image
	if sc.Build != nil {
		if sc.Image == "" {
			spec.Image = s.Metadata.Name + ":latest"
		}
		c.note(sp+".build", Unsupported, "build the image and push it where the nodes pull from; using image %q", spec.Image)
	}
	if spec.Image == "" {
		spec.Image = s.Metadata.Name + ":latest"
		c.note(sp+".image", Unsupported, "no image; using %q", spec.Image)
	}

	// command and entrypoint: Compose's entrypoint is Docker's Entrypoint (spec.command), its
	// command is Docker's Cmd (spec.args).
	h("command", "entrypoint")
	if len(sc.Entrypoint) > 0 {
		spec.Command = append([]string(nil), sc.Entrypoint...)
	}
	if len(sc.Command) > 0 {
		spec.Args = append([]string(nil), sc.Command...)
	}

	// environment (env_file is already merged in by the loader)
	h("environment", "env_file")
	for _, k := range sortedKeys(sc.Environment) {
		v := sc.Environment[k]
		ep := sp + ".environment." + k
		if v == nil {
			c.note(ep, Unsupported, "no value (not set in the environment or .env): left out")
			continue
		}
		if !envNameRE.MatchString(k) {
			c.note(ep, Unsupported, "not a C identifier")
			continue
		}
		if looksSecret(k, *v) {
			sec, key, first := c.secretKey(s.Metadata.Name, k, *v)
			spec.Env = append(spec.Env, v1.EnvVar{Name: k, SecretRef: &v1.SecretKeyRef{Name: sec, Key: key}})
			if first {
				c.res.Secrets = append(c.res.Secrets, SecretNeed{Secret: sec, Key: key, From: ep})
			}
			c.note(ep, Changed, "looks secret: now secretRef %s/%s; create that Secret before applying (the value is not written)", sec, key)
			continue
		}
		spec.Env = append(spec.Env, v1.EnvVar{Name: k, Value: *v})
	}

	// ports and expose
	h("ports", "expose")
	seenPort := map[string]bool{}
	for i, p := range sc.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", sp, i)
		proto := v1.ProtocolTCP
		switch p.Protocol {
		case "", "tcp":
		case "udp":
			proto = v1.ProtocolUDP
		default:
			c.note(pp+".protocol", Unsupported, "%q", p.Protocol)
			continue
		}
		key := fmt.Sprintf("%d/%s", p.Target, proto)
		if seenPort[key] {
			c.note(pp, Unsupported, "container port %s published twice: only the first is kept", key)
			continue
		}
		seenPort[key] = true
		port := v1.ServicePort{ContainerPort: int32(p.Target), Protocol: proto, Name: portName(p.Name, p.Target, proto)}
		if p.Published != "" {
			hp, err := strconv.Atoi(p.Published)
			if err != nil || hp < 1 || hp > 65535 {
				c.note(pp+".published", Unsupported, "%q: a host port must be one number", p.Published)
			} else {
				port.HostPort = int32(hp)
			}
		}
		if p.HostIP != "" && p.HostIP != "0.0.0.0" && p.HostIP != "::" {
			c.note(pp+".host_ip", Unsupported, "host ports are published on every address of the node")
		}
		if p.Mode == "host" {
			c.note(pp+".mode", Changed, "host: hostPort is always published on the node that runs the replica")
		}
		if p.AppProtocol == "http" {
			port.AppProtocol = v1.AppProtocolHTTP
		} else if p.AppProtocol != "" {
			c.note(pp+".app_protocol", Unsupported, "%q (only http)", p.AppProtocol)
		}
		spec.Ports = append(spec.Ports, port)
	}
	for i, e := range sc.Expose {
		ep := fmt.Sprintf("%s.expose[%d]", sp, i)
		num, proto, _ := strings.Cut(e, "/")
		pr := v1.ProtocolTCP
		if proto == "udp" {
			pr = v1.ProtocolUDP
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			c.note(ep, Unsupported, "%q: only single ports", e)
			continue
		}
		key := fmt.Sprintf("%d/%s", n, pr)
		if seenPort[key] {
			continue
		}
		seenPort[key] = true
		spec.Ports = append(spec.Ports, v1.ServicePort{ContainerPort: int32(n), Protocol: pr, Name: portName("", uint32(n), pr)})
	}

	c.healthcheck(sp, sc.HealthCheck, spec)
	h("healthcheck")

	c.volumes(sp, name, sc, spec)
	h("volumes", "tmpfs")

	c.network(sp, sc, spec)
	h("network_mode", "networks", "pid", "ipc", "privileged", "cap_add", "cap_drop", "devices")

	// depends_on
	h("depends_on")
	for _, d := range sortedKeys(sc.DependsOn) {
		dep := sc.DependsOn[d]
		dp := sp + ".depends_on." + d
		target, ok := c.names[d]
		if !ok {
			c.note(dp, Unsupported, "not a service of this project (profile off?)")
			continue
		}
		cond := v1.DependencyStarted
		switch dep.Condition {
		case "", types.ServiceConditionStarted:
		case types.ServiceConditionHealthy:
			cond = v1.DependencyHealthy
		case types.ServiceConditionCompletedSuccessfully:
			c.note(dp+".condition", Unsupported, "service_completed_successfully needs Jobs: waits for started instead")
		default:
			c.note(dp+".condition", Unsupported, "%q", dep.Condition)
		}
		if dep.Restart && !linked(sc.Links, d) {
			c.note(dp+".restart", Unsupported, "a dependent is not restarted with its dependency")
		}
		if !dep.Required {
			c.note(dp+".required", Changed, "false: a dependency is always required")
		}
		spec.DependsOn = append(spec.DependsOn, v1.Dependency{Service: target, Condition: cond})
	}

	c.deploy(sp, sc, spec)
	h("deploy", "scale")

	c.containerOptions(sp, sc, spec)
	h("user", "working_dir", "sysctls", "read_only", "ulimits", "extra_hosts", "init",
		"stop_signal", "stop_grace_period", "shm_size", "logging", "mem_limit", "cpus")

	// labels: Traefik's become routes, the rest stay container labels.
	h("labels")
	labels := map[string]string{}
	for k, v := range sc.Labels {
		labels[k] = v
	}
	if sc.Deploy != nil {
		for k, v := range sc.Deploy.Labels {
			labels[k] = v
		}
	}
	rest := c.traefik(sp, labels, spec)
	for _, k := range sortedKeys(rest) {
		if strings.HasPrefix(strings.ToLower(k), v1.ReservedLabelPrefix) {
			c.note(sp+".labels."+k, Unsupported, "the prefix %q is the agent's", v1.ReservedLabelPrefix)
			continue
		}
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[k] = rest[k]
	}

	for i, r := range sc.Secrets {
		c.fileRef(fmt.Sprintf("%s.secrets[%d]", sp, i), v1.KindSecret, types.FileReferenceConfig(r))
	}
	for i, r := range sc.Configs {
		c.fileRef(fmt.Sprintf("%s.configs[%d]", sp, i), v1.KindConfig, types.FileReferenceConfig(r))
	}
	h("secrets", "configs")
	c.readOnlyFiles(sp, spec)

	c.leftover(sp, sc)
	return s
}

// secretKey places a secret-looking variable in the project's Secret (PROJECT-env): key VAR, so
// services that share a credential under one name share the key; a second, different value
// under the same name gets the key SERVICE.VAR. first says the key is new.
func (c *converter) secretKey(svc, name, value string) (secret, key string, first bool) {
	secret = dnsName(c.p.Name)
	if len(secret) > 59 {
		secret = strings.TrimRight(secret[:59], "-")
	}
	if secret == "" {
		secret = "compose"
	}
	secret += "-env"
	if c.secretVals == nil {
		c.secretVals = map[string]string{}
	}
	for _, k := range []string{name, svc + "." + name} {
		if old, ok := c.secretVals[k]; ok {
			if old == value {
				return secret, k, false
			}
			continue
		}
		c.secretVals[k] = value
		return secret, k, true
	}
	return secret, svc + "." + name, false // unreachable: SERVICE.VAR is unique per service
}

// Compose's healthcheck defaults (interval 30s, timeout 30s, retries 3), written out because
// Constellation's differ.
const (
	composeInterval = 30 * time.Second
	composeTimeout  = 30 * time.Second
	composeRetries  = 3
)

func (c *converter) healthcheck(sp string, hc *types.HealthCheckConfig, spec *v1.ServiceSpec) {
	if hc == nil || hc.Disable || len(hc.Test) == 0 {
		return
	}
	hp := sp + ".healthcheck"
	var cmd []string
	switch hc.Test[0] {
	case "NONE":
		return
	case "CMD":
		cmd = append([]string(nil), hc.Test[1:]...)
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		c.note(hp+".test", Unsupported, "must start with CMD, CMD-SHELL or NONE, got %q", hc.Test[0])
		return
	}
	if len(cmd) == 0 {
		c.note(hp+".test", Unsupported, "empty command")
		return
	}
	out := &v1.HealthCheck{Exec: &v1.ExecHealthCheck{Command: cmd}}
	interval, timeout := composeInterval, composeTimeout
	if hc.Interval != nil && *hc.Interval > 0 {
		interval = time.Duration(*hc.Interval)
	}
	if interval < 100*time.Millisecond {
		c.note(hp+".interval", Changed, "%s raised to 100ms (the minimum)", interval)
		interval = 100 * time.Millisecond
	}
	if hc.Timeout != nil && *hc.Timeout > 0 {
		timeout = time.Duration(*hc.Timeout)
	}
	if timeout > interval {
		if hc.Timeout != nil {
			c.note(hp+".timeout", Changed, "%s lowered to the interval %s (a check may not outlast its interval)", timeout, interval)
		}
		timeout = interval
	}
	retries := int32(composeRetries)
	if hc.Retries != nil {
		switch r := *hc.Retries; {
		case r < 1:
			retries = 1
		case r > 100:
			c.note(hp+".retries", Changed, "%d lowered to 100", r)
			retries = 100
		default:
			retries = int32(r)
		}
	}
	out.Interval = &v1.Duration{Duration: interval}
	out.Timeout = &v1.Duration{Duration: timeout}
	out.Retries = &retries
	if hc.StartPeriod != nil && *hc.StartPeriod > 0 {
		out.StartPeriod = durPtr(hc.StartPeriod)
	}
	if hc.StartInterval != nil {
		c.note(hp+".start_interval", Unsupported, "checks run every interval from the start")
	}
	spec.HealthCheck = out
}

// leftover reports every non-empty field of the service that no mapping handled.
func (c *converter) leftover(sp string, sc types.ServiceConfig) {
	b, err := json.Marshal(sc)
	if err != nil {
		c.note(sp, Unsupported, "cannot inspect the remaining fields: %v", err)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return
	}
	for _, k := range sortedKeys(m) {
		if c.handled[k] {
			continue
		}
		walkLeaves(sp+"."+k, m[k], func(p string) { c.note(p, Unsupported, "") })
	}
}

func walkLeaves(p string, v any, f func(string)) {
	switch x := v.(type) {
	case nil:
	case bool:
		if x {
			f(p)
		}
	case float64:
		if x != 0 {
			f(p)
		}
	case string:
		if x != "" && x != "0" {
			f(p)
		}
	case []any:
		if len(x) > 0 {
			f(p)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			walkLeaves(p+"."+k, x[k], f)
		}
	default:
		f(p)
	}
}
