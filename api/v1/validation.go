package v1

import (
	"regexp"
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
