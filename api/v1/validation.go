package v1

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dockerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	entryPointRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)
	secretKeyRE  = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)
	imageRefRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/:@+-]*$`)
)

// Limits enforced by validation.
const (
	MaxReplicas       = 1000
	MaxSecretBytes    = 1 << 20
	MaxTXTContentLen  = 2048
	maxDNSNameLen     = 253
	maxAnnotationSize = 256 << 10
)

// IsDNSLabel reports whether s is a lowercase RFC 1123 label (an object name).
func IsDNSLabel(s string) bool { return dnsLabelRE.MatchString(s) }

// IsDNSName reports whether s is a host name made of RFC 1123 labels, upper case allowed
// (a leading "*." wildcard when wildcard is true).
func IsDNSName(s string, wildcard bool) bool {
	if wildcard && strings.HasPrefix(s, "*.") {
		s = s[2:]
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > maxDNSNameLen {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !dnsLabelRE.MatchString(strings.ToLower(l)) {
			return false
		}
	}
	return true
}

func validateMeta(tm *TypeMeta, m *ObjectMeta, wantKind string) ErrorList {
	var errs ErrorList
	if tm.APIVersion != APIVersion {
		errs.add("apiVersion", "must be %q, got %q", APIVersion, tm.APIVersion)
	}
	if tm.Kind != wantKind {
		errs.add("kind", "must be %q, got %q", wantKind, tm.Kind)
	}
	p := path("metadata")
	switch {
	case m.Name == "":
		errs.add(p.child("name").String(), "required")
	case !IsDNSLabel(m.Name):
		errs.add(p.child("name").String(), "must be a DNS label (lowercase letters, digits and '-', 1-63 characters, starting and ending with a letter or digit), got %q", m.Name)
	}
	errs = append(errs, validateLabels(p.child("labels"), m.Labels)...)
	size := 0
	for k, v := range m.Annotations {
		if !validLabelKey(k) {
			errs.add(p.child("annotations").key(k).String(), "invalid annotation key")
		}
		size += len(k) + len(v)
	}
	if size > maxAnnotationSize {
		errs.add(p.child("annotations").String(), "total size must be at most %d bytes, got %d", maxAnnotationSize, size)
	}
	seen := map[string]bool{}
	for i, f := range m.Finalizers {
		fp := p.child("finalizers").index(i).String()
		if !validLabelKey(f) {
			errs.add(fp, "must be a qualified name like \"constellation/dns\", got %q", f)
		}
		if seen[f] {
			errs.add(fp, "duplicate finalizer %q", f)
		}
		seen[f] = true
	}
	for i, o := range m.OwnerReferences {
		op := p.child("ownerReferences").index(i)
		if o.Kind == "" {
			errs.add(op.child("kind").String(), "required")
		}
		if !IsDNSLabel(o.Name) {
			errs.add(op.child("name").String(), "must be a DNS label, got %q", o.Name)
		}
	}
	return errs
}

// validLabelKey accepts "name" or "prefix/name" where prefix is a DNS name.
func validLabelKey(k string) bool {
	prefix, name, found := strings.Cut(k, "/")
	if !found {
		return labelNameRE.MatchString(k)
	}
	return IsDNSName(prefix, false) && labelNameRE.MatchString(name)
}

func validateLabels(p path, labels map[string]string) ErrorList {
	var errs ErrorList
	for k, v := range labels {
		if !validLabelKey(k) {
			errs.add(p.key(k).String(), "invalid label key: must be 1-63 letters, digits, '-', '_' or '.', optionally behind a DNS prefix and '/'")
		}
		if !labelValueRE.MatchString(v) {
			errs.add(p.key(k).String(), "invalid label value %q: must be at most 63 letters, digits, '-', '_' or '.'", v)
		}
	}
	return errs
}

func validateDuration(errs *ErrorList, p path, d *Duration, min time.Duration) {
	if d != nil && d.Duration < min {
		if min == 0 {
			errs.add(p.String(), "must not be negative, got %s", d.Duration)
		} else {
			errs.add(p.String(), "must be at least %s, got %s", min, d.Duration)
		}
	}
}

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

// Validate reports every problem in the DNSRecord.
func (d *DNSRecord) Validate() ErrorList {
	errs := validateMeta(&d.TypeMeta, &d.Metadata, KindDNSRecord)
	sp := path("spec")
	s := &d.Spec
	zoneOK := IsDNSName(s.Zone, false) && strings.Contains(s.Zone, ".")
	if !zoneOK {
		errs.add(sp.child("zone").String(), "must be a domain name like \"example.com\", got %q", s.Zone)
	}
	name := strings.TrimSuffix(s.Name, ".")
	switch {
	case !IsDNSName(name, true):
		errs.add(sp.child("name").String(), "must be a fully qualified name, got %q", s.Name)
	case zoneOK && name != s.Zone && !strings.HasSuffix(name, "."+s.Zone):
		errs.add(sp.child("name").String(), "must be inside zone %q, got %q", s.Zone, s.Name)
	}
	switch s.Type {
	case RecordA, RecordAAAA, RecordCNAME, RecordTXT:
	default:
		errs.add(sp.child("type").String(), "must be A, AAAA, CNAME or TXT, got %q", s.Type)
	}
	if s.TTL != 0 && s.TTL != 1 && (s.TTL < 60 || s.TTL > 86400) {
		errs.add(sp.child("ttl").String(), "must be 1 (automatic) or 60-86400, got %d", s.TTL)
	}
	if s.Proxied && s.Type != RecordA && s.Type != RecordAAAA && s.Type != RecordCNAME {
		errs.add(sp.child("proxied").String(), "only A, AAAA and CNAME records can be proxied")
	}
	switch {
	case s.Content == "" && s.Target == nil:
		errs.add(sp.String(), "exactly one of content and target is required")
	case s.Content != "" && s.Target != nil:
		errs.add(sp.String(), "exactly one of content and target, got both")
	case s.Content != "":
		cp := sp.child("content").String()
		switch s.Type {
		case RecordA:
			if ip := net.ParseIP(s.Content); ip == nil || ip.To4() == nil {
				errs.add(cp, "must be an IPv4 address for an A record, got %q", s.Content)
			}
		case RecordAAAA:
			if ip := net.ParseIP(s.Content); ip == nil || ip.To4() != nil {
				errs.add(cp, "must be an IPv6 address for an AAAA record, got %q", s.Content)
			}
		case RecordCNAME:
			if !IsDNSName(s.Content, false) {
				errs.add(cp, "must be a host name for a CNAME record, got %q", s.Content)
			}
		case RecordTXT:
			if len(s.Content) > MaxTXTContentLen {
				errs.add(cp, "must be at most %d characters, got %d", MaxTXTContentLen, len(s.Content))
			}
		}
	default:
		tp := sp.child("target")
		if s.Type != RecordA && s.Type != RecordAAAA {
			errs.add(tp.String(), "only A and AAAA records can follow a target, got type %q", s.Type)
		}
		if (s.Target.Lease == "") == (s.Target.NodeSelector == nil) {
			errs.add(tp.String(), "exactly one of lease and nodeSelector")
		}
		if s.Target.Lease != "" && !IsDNSLabel(s.Target.Lease) {
			errs.add(tp.child("lease").String(), "must name a Lease, got %q", s.Target.Lease)
		}
		errs = append(errs, validateLabels(tp.child("nodeSelector"), s.Target.NodeSelector)...)
	}
	return errs
}

// Validate reports every problem in the Lease.
func (l *Lease) Validate() ErrorList {
	errs := validateMeta(&l.TypeMeta, &l.Metadata, KindLease)
	sp := path("spec")
	if len(l.Spec.HolderIdentity) > 253 {
		errs.add(sp.child("holderIdentity").String(), "must be at most 253 characters")
	}
	if l.Spec.LeaseDurationSeconds < 0 || (l.Spec.HolderIdentity != "" && l.Spec.LeaseDurationSeconds < 1) {
		errs.add(sp.child("leaseDurationSeconds").String(), "must be at least 1 when the lease has a holder, got %d", l.Spec.LeaseDurationSeconds)
	}
	if l.Spec.LeaseTransitions < 0 {
		errs.add(sp.child("leaseTransitions").String(), "must not be negative, got %d", l.Spec.LeaseTransitions)
	}
	return errs
}

// Validate reports every problem in the ReplicaSet.
func (r *ReplicaSet) Validate() ErrorList {
	errs := validateMeta(&r.TypeMeta, &r.Metadata, KindReplicaSet)
	sp := path("spec")
	s := &r.Spec
	if s.Engine != EngineMongo && s.Engine != EngineRedis {
		errs.add(sp.child("engine").String(), "must be mongo or redis, got %q", s.Engine)
	}
	if len(s.Members) == 0 {
		errs.add(sp.child("members").String(), "at least one member Service is required")
	}
	members := map[string]bool{}
	for i, m := range s.Members {
		if !IsDNSLabel(m) {
			errs.add(sp.child("members").index(i).String(), "must name a Service, got %q", m)
		}
		if members[m] {
			errs.add(sp.child("members").index(i).String(), "duplicate member %q", m)
		}
		members[m] = true
	}
	if s.Engine == EngineMongo {
		if s.Mongo == nil {
			errs.add(sp.child("mongo").String(), "required when engine is mongo")
		} else {
			mp := sp.child("mongo")
			if s.Mongo.ReplSetName == "" || strings.ContainsAny(s.Mongo.ReplSetName, " /\\.\"$") {
				errs.add(mp.child("replSetName").String(), "required, without spaces, '/', '\\', '.', '\"' or '$', got %q", s.Mongo.ReplSetName)
			}
			for name, p := range s.Mongo.Priorities {
				if !members[name] {
					errs.add(mp.child("priorities").key(name).String(), "is not a member")
				}
				if p < 0 || p > 1000 {
					errs.add(mp.child("priorities").key(name).String(), "must be 0-1000, got %g", p)
				}
			}
		}
	}
	if s.Engine == EngineRedis {
		if s.Redis == nil {
			errs.add(sp.child("redis").String(), "required when engine is redis")
		} else {
			rp := sp.child("redis")
			if s.Redis.MasterName == "" || strings.ContainsAny(s.Redis.MasterName, " \t\n") {
				errs.add(rp.child("masterName").String(), "required, without spaces, got %q", s.Redis.MasterName)
			}
			if !IsDNSLabel(s.Redis.Sentinel) {
				errs.add(rp.child("sentinel").String(), "must name the sentinel Service, got %q", s.Redis.Sentinel)
			}
			if s.Redis.Quorum < 0 {
				errs.add(rp.child("quorum").String(), "must not be negative, got %d", s.Redis.Quorum)
			}
			validateDuration(&errs, rp.child("downAfter"), s.Redis.DownAfter, 100*time.Millisecond)
			validateDuration(&errs, rp.child("failoverTimeout"), s.Redis.FailoverTimeout, time.Second)
			validateDuration(&errs, rp.child("minReplicasMaxLag"), s.Redis.MinReplicasMaxLag, time.Second)
			if s.Redis.MinReplicasToWrite < 0 {
				errs.add(rp.child("minReplicasToWrite").String(), "must not be negative, got %d", s.Redis.MinReplicasToWrite)
			}
			if s.Redis.SentinelPort < 0 || s.Redis.SentinelPort > 65535 {
				errs.add(rp.child("sentinelPort").String(), "must be 1-65535, got %d", s.Redis.SentinelPort)
			}
			if s.Redis.Sentinel != "" && members[s.Redis.Sentinel] {
				errs.add(rp.child("sentinel").String(), "must not be a member Service, got %q", s.Redis.Sentinel)
			}
			if ps := s.Redis.PasswordSecret; ps != nil && !IsDNSLabel(ps.Name) {
				errs.add(rp.child("passwordSecret").child("name").String(), "must name a Secret, got %q", ps.Name)
			}
		}
	}
	if s.Engine == EngineMongo && s.Redis != nil {
		errs.add(sp.child("redis").String(), "must be empty when engine is mongo")
	}
	if s.Engine == EngineRedis && s.Mongo != nil {
		errs.add(sp.child("mongo").String(), "must be empty when engine is redis")
	}
	return errs
}

// Validate reports every problem in the Node.
func (n *Node) Validate() ErrorList {
	errs := validateMeta(&n.TypeMeta, &n.Metadata, KindNode)
	errs = append(errs, validateLabels(path("spec").child("labels"), n.Spec.Labels)...)
	return errs
}

// Validate reports every problem in the Secret, never quoting a value.
func (s *Secret) Validate() ErrorList {
	errs := validateMeta(&s.TypeMeta, &s.Metadata, KindSecret)
	dp := path("spec").child("data")
	size := 0
	for k, v := range s.Spec.Data {
		if !secretKeyRE.MatchString(k) {
			errs.add(dp.key(k).String(), "invalid key: use letters, digits, '-', '_' or '.'")
		}
		size += len(k) + len(v)
	}
	if size > MaxSecretBytes {
		errs.add(dp.String(), "must be at most %d bytes in all, got %d", MaxSecretBytes, size)
	}
	if sd := s.Spec.Sealed; sd != nil {
		sp := path("spec").child("sealed")
		if len(s.Spec.Data) > 0 {
			errs.add(sp.String(), "must not be set together with spec.data")
		}
		if sd.KeyID == "" {
			errs.add(sp.child("keyID").String(), "required")
		}
	}
	return errs
}
