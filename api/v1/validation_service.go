package v1

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Validate reports every problem in the Service.
func (s *Service) Validate() ErrorList {
	errs := validateMeta(&s.TypeMeta, &s.Metadata, KindService)
	sp := path("spec")
	spec := &s.Spec
	switch {
	case spec.Image == "" && spec.IsUpstreamService():
	case spec.Image == "":
		errs.add(sp.child("image").String(), "required")
	case !imageRefRE.MatchString(spec.Image):
		errs.add(sp.child("image").String(), "invalid image reference %q", spec.Image)
	}
	if spec.Replicas != nil && (*spec.Replicas < 0 || *spec.Replicas > MaxReplicas) {
		errs.add(sp.child("replicas").String(), "must be 0-%d, got %d", MaxReplicas, *spec.Replicas)
	}

	portNames := map[string]bool{}
	portKeys := map[string]bool{}
	for i, port := range spec.Ports {
		pp := sp.child("ports").index(i)
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			errs.add(pp.child("containerPort").String(), "must be 1-65535, got %d", port.ContainerPort)
		}
		if port.Protocol != "" && port.Protocol != ProtocolTCP && port.Protocol != ProtocolUDP {
			errs.add(pp.child("protocol").String(), "must be tcp or udp, got %q", port.Protocol)
		}
		if port.Name == "" && len(spec.Ports) > 1 {
			errs.add(pp.child("name").String(), "required when a service has more than one port")
		}
		if port.Name != "" {
			if !isPortName(port.Name) {
				errs.add(pp.child("name").String(), "must be a DNS label of at most 15 characters with at least one letter, got %q", port.Name)
			}
			if portNames[port.Name] {
				errs.add(pp.child("name").String(), "duplicate port name %q", port.Name)
			}
			portNames[port.Name] = true
		}
		key := strconv.Itoa(int(port.ContainerPort)) + "/" + string(port.protocol())
		if portKeys[key] {
			errs.add(pp.child("containerPort").String(), "duplicate port %s", key)
		}
		portKeys[key] = true
	}

	envNames := map[string]bool{}
	for i, e := range spec.Env {
		ep := sp.child("env").index(i)
		if !envNameRE.MatchString(e.Name) {
			errs.add(ep.child("name").String(), "must be a C identifier (letters, digits, '_'), got %q", e.Name)
		}
		if envNames[e.Name] {
			errs.add(ep.child("name").String(), "duplicate variable %q", e.Name)
		}
		envNames[e.Name] = true
		if e.SecretRef != nil {
			if e.Value != "" {
				errs.add(ep.String(), "exactly one of value and secretRef")
			}
			if !IsDNSLabel(e.SecretRef.Name) {
				errs.add(ep.child("secretRef").child("name").String(), "must name a Secret, got %q", e.SecretRef.Name)
			}
			if !secretKeyRE.MatchString(e.SecretRef.Key) {
				errs.add(ep.child("secretRef").child("key").String(), "invalid key %q", e.SecretRef.Key)
			}
			switch e.SecretRef.Restart {
			case "", SecretRestartRolling, SecretRestartNever:
			default:
				errs.add(ep.child("secretRef").child("restart").String(), "must be %q or %q, got %q", SecretRestartRolling, SecretRestartNever, e.SecretRef.Restart)
			}
		}
	}

	if hc := spec.HealthCheck; hc != nil {
		hp := sp.child("healthCheck")
		n := 0
		if hc.HTTP != nil {
			n++
			if hc.HTTP.Path != "" && !strings.HasPrefix(hc.HTTP.Path, "/") {
				errs.add(hp.child("http").child("path").String(), "must start with '/', got %q", hc.HTTP.Path)
			}
			s.checkPortRef(&errs, hp.child("http").child("port"), hc.HTTP.Port, ProtocolTCP)
		}
		if hc.TCP != nil {
			n++
			s.checkPortRef(&errs, hp.child("tcp").child("port"), hc.TCP.Port, ProtocolTCP)
		}
		if hc.Exec != nil {
			n++
			if len(hc.Exec.Command) == 0 {
				errs.add(hp.child("exec").child("command").String(), "required")
			}
		}
		if n != 1 {
			errs.add(hp.String(), "exactly one of http, tcp and exec, got %d", n)
		}
		validateDuration(&errs, hp.child("interval"), hc.Interval, 100*time.Millisecond)
		validateDuration(&errs, hp.child("timeout"), hc.Timeout, 10*time.Millisecond)
		validateDuration(&errs, hp.child("startPeriod"), hc.StartPeriod, 0)
		if hc.Interval != nil && hc.Timeout != nil && hc.Timeout.Duration > hc.Interval.Duration {
			errs.add(hp.child("timeout").String(), "must not exceed interval (%s), got %s", hc.Interval.Duration, hc.Timeout.Duration)
		}
		if hc.Retries != nil && (*hc.Retries < 1 || *hc.Retries > 100) {
			errs.add(hp.child("retries").String(), "must be 1-100, got %d", *hc.Retries)
		}
	}

	if r := spec.Routes; r != nil {
		rp := sp.child("routes")
		for i, h := range r.HTTP {
			hp := rp.child("http").index(i)
			if h.Host == "" {
				errs.add(hp.child("host").String(), "required")
			} else if !IsDNSName(h.Host, true) {
				errs.add(hp.child("host").String(), "must be a host name, got %q", h.Host)
			}
			if h.PathPrefix != "" && (!strings.HasPrefix(h.PathPrefix, "/") || strings.ContainsAny(h.PathPrefix, "`\"' \t\n")) {
				errs.add(hp.child("pathPrefix").String(), "must start with '/' and hold no quotes or spaces, got %q", h.PathPrefix)
			}
			s.checkPortRef(&errs, hp.child("port"), h.Port, ProtocolTCP)
			validateEntryPoints(&errs, hp.child("entryPoints"), h.EntryPoints)
			if h.Priority < 0 {
				errs.add(hp.child("priority").String(), "must not be negative, got %d", h.Priority)
			}
			if h.TLS != nil && h.TLS.CertResolver != "" && !entryPointRE.MatchString(h.TLS.CertResolver) {
				errs.add(hp.child("tls").child("certResolver").String(), "invalid resolver name %q", h.TLS.CertResolver)
			}
			if h.HealthCheckPath != "" && !strings.HasPrefix(h.HealthCheckPath, "/") {
				errs.add(hp.child("healthCheckPath").String(), "must start with '/', got %q", h.HealthCheckPath)
			}
			if m := h.Middlewares; m != nil {
				mp := hp.child("middlewares")
				if m.StripPrefix && h.PathPrefix == "" {
					errs.add(mp.child("stripPrefix").String(), "needs a pathPrefix")
				}
				for k := range m.Headers {
					if k == "" || strings.ContainsAny(k, " :\t\r\n") {
						errs.add(mp.child("headers").key(k).String(), "invalid header name")
					}
				}
				if m.BasicAuthSecret != "" && !IsDNSLabel(m.BasicAuthSecret) {
					errs.add(mp.child("basicAuthSecret").String(), "must name a Secret, got %q", m.BasicAuthSecret)
				}
				if m.RateLimit != nil {
					if m.RateLimit.Average < 1 {
						errs.add(mp.child("rateLimit").child("average").String(), "must be at least 1, got %d", m.RateLimit.Average)
					}
					if m.RateLimit.Burst < 0 {
						errs.add(mp.child("rateLimit").child("burst").String(), "must not be negative, got %d", m.RateLimit.Burst)
					}
				}
				if m.RetryAttempts < 0 || m.RetryAttempts > 10 {
					errs.add(mp.child("retryAttempts").String(), "must be 0-10, got %d", m.RetryAttempts)
				}
			}
		}
		for i, t := range r.TCP {
			tp := rp.child("tcp").index(i)
			if t.HostSNI != "*" && !IsDNSName(t.HostSNI, true) {
				errs.add(tp.child("hostSNI").String(), "must be \"*\" or a host name, got %q", t.HostSNI)
			}
			if !entryPointRE.MatchString(t.EntryPoint) {
				errs.add(tp.child("entryPoint").String(), "must name a Traefik entry point, got %q", t.EntryPoint)
			}
			if t.Passthrough && t.HostSNI == "*" {
				errs.add(tp.child("passthrough").String(), "needs a hostSNI other than \"*\"")
			}
			s.checkPortRef(&errs, tp.child("port"), t.Port, ProtocolTCP)
		}
		for i, u := range r.UDP {
			up := rp.child("udp").index(i)
			if !entryPointRE.MatchString(u.EntryPoint) {
				errs.add(up.child("entryPoint").String(), "must name a Traefik entry point, got %q", u.EntryPoint)
			}
			s.checkPortRef(&errs, up.child("port"), u.Port, ProtocolUDP)
		}
	}

	if pl := spec.Placement; pl != nil {
		pp := sp.child("placement")
		if pl.MaxPerNode < 0 {
			errs.add(pp.child("maxPerNode").String(), "must not be negative, got %d", pl.MaxPerNode)
		}
		errs = append(errs, validateLabels(pp.child("nodeSelector"), pl.NodeSelector)...)
		switch pl.Volumes {
		case "", VolumesSticky, VolumesRecreate:
		default:
			errs.add(pp.child("volumes").String(), "must be %q or %q, got %q", VolumesSticky, VolumesRecreate, pl.Volumes)
		}
	}

	nets := map[string]bool{}
	for i, n := range spec.Networks {
		np := sp.child("networks").index(i)
		if !dockerNameRE.MatchString(n) || n == "host" || n == "none" {
			errs.add(np.String(), "invalid network name %q", n)
		}
		if nets[n] {
			errs.add(np.String(), "duplicate network %q", n)
		}
		nets[n] = true
	}

	targets := map[string]bool{}
	for i, v := range spec.Volumes {
		vp := sp.child("volumes").index(i)
		switch {
		case v.Source == "":
			errs.add(vp.child("source").String(), "required")
		case strings.HasPrefix(v.Source, "/"):
			if filepath.Clean(v.Source) != v.Source {
				errs.add(vp.child("source").String(), "bind mount source must be a clean absolute path, got %q", v.Source)
			}
		case !dockerNameRE.MatchString(v.Source):
			errs.add(vp.child("source").String(), "must be a volume name or an absolute path, got %q", v.Source)
		}
		if !strings.HasPrefix(v.Target, "/") || filepath.Clean(v.Target) != v.Target {
			errs.add(vp.child("target").String(), "must be a clean absolute path, got %q", v.Target)
		}
		if targets[v.Target] {
			errs.add(vp.child("target").String(), "duplicate mount target %q", v.Target)
		}
		targets[v.Target] = true
	}

	errs = append(errs, validateHostFields(sp, spec)...)
	errs = append(errs, validateContainerOptions(sp, spec)...)
	errs = append(errs, validateModeAndDeps(sp, s.Metadata.Name, spec)...)
	errs = append(errs, validateFiles(sp, spec.Files, spec.Volumes, &spec.ContainerOptions, spec.IsUpstreamService())...)
	validateFailover(&errs, sp, spec)
	errs = append(errs, validateEgress(s)...)

	if res := spec.Resources; res != nil {
		rp := sp.child("resources")
		if res.CPUs != "" {
			if f, err := strconv.ParseFloat(res.CPUs, 64); err != nil || f <= 0 || f > 1024 {
				errs.add(rp.child("cpus").String(), "must be a decimal number of CPUs above 0, got %q", res.CPUs)
			}
		}
		if res.MemoryMB != 0 && res.MemoryMB < 6 {
			errs.add(rp.child("memoryMB").String(), "must be at least 6 (Docker's minimum), got %d", res.MemoryMB)
		}
	}

	if u := spec.Update; u != nil {
		up := sp.child("update")
		if u.Order != "" && u.Order != StartFirst && u.Order != StopFirst {
			errs.add(up.child("order").String(), "must be start-first or stop-first, got %q", u.Order)
		}
		if u.MaxUnavailable != nil && *u.MaxUnavailable < 0 {
			errs.add(up.child("maxUnavailable").String(), "must not be negative, got %d", *u.MaxUnavailable)
		}
		if u.MaxSurge != nil && *u.MaxSurge < 0 {
			errs.add(up.child("maxSurge").String(), "must not be negative, got %d", *u.MaxSurge)
		}
		if u.MaxUnavailable != nil && u.MaxSurge != nil && *u.MaxUnavailable == 0 && *u.MaxSurge == 0 {
			errs.add(up.String(), "maxUnavailable and maxSurge cannot both be 0: the update could never progress")
		}
		if u.Order == StopFirst && u.MaxUnavailable != nil && *u.MaxUnavailable == 0 {
			errs.add(up.child("maxUnavailable").String(), "must be at least 1 with order stop-first")
		}
	}
	return errs
}

func (p ServicePort) protocol() Protocol {
	if p.Protocol == "" {
		return ProtocolTCP
	}
	return p.Protocol
}

// ResolvePort finds the port a route or health check refers to: by name, by number, or the
// first port of the protocol when ref is empty.
func (s *ServiceSpec) ResolvePort(ref PortRef, proto Protocol) (ServicePort, bool) {
	n, numeric := ref.PortNumber()
	for _, p := range s.Ports {
		if p.protocol() != proto {
			continue
		}
		if ref == "" || (numeric && n == int(p.ContainerPort)) || (!numeric && string(ref) == p.Name) {
			return p, true
		}
	}
	return ServicePort{}, false
}

func (s *Service) checkPortRef(errs *ErrorList, p path, ref PortRef, proto Protocol) {
	n, numeric := ref.PortNumber()
	switch {
	case numeric && (n < 1 || n > 65535):
		errs.add(p.String(), "must be 1-65535, got %d", n)
		return
	case !numeric && ref != "" && !isPortName(string(ref)):
		errs.add(p.String(), "must be a port number or the name of a port, got %q", string(ref))
		return
	}
	if _, ok := s.Spec.ResolvePort(ref, proto); ok {
		return
	}
	switch {
	case ref == "":
		errs.add(p.String(), "the service declares no %s port in spec.ports", proto)
	case numeric:
		errs.add(p.String(), "no %s port numbered %d in spec.ports", proto, n)
	default:
		errs.add(p.String(), "no %s port named %q in spec.ports", proto, string(ref))
	}
}

// isPortName is Kubernetes' IANA_SVC_NAME rule: a DNS label of at most 15 characters holding at
// least one letter, so that a name can never be mistaken for a port number.
func isPortName(s string) bool {
	return len(s) <= 15 && IsDNSLabel(s) && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz")
}

func validateEntryPoints(errs *ErrorList, p path, eps []string) {
	for i, ep := range eps {
		if !entryPointRE.MatchString(ep) {
			errs.add(p.index(i).String(), "must name a Traefik entry point, got %q", ep)
		}
	}
}
