package v1

import (
	"regexp"
	"strings"
)

// DefaultCapabilities is Docker's default capability set for a container (moby's
// oci/caps.DefaultCapabilities). Adding one of these back (after a capDrop) is not host access;
// adding any other is.
var DefaultCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

var capabilityRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// NormalizeCapability is a capability name as Docker and the checks compare it: upper case,
// without the "CAP_" prefix ("cap_net_admin" → "NET_ADMIN").
func NormalizeCapability(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	return strings.TrimPrefix(c, "CAP_")
}

// IsDefaultCapability reports whether c (any spelling NormalizeCapability accepts) is in
// Docker's default set.
func IsDefaultCapability(c string) bool {
	c = NormalizeCapability(c)
	for _, d := range DefaultCapabilities {
		if c == d {
			return true
		}
	}
	return false
}

// IsBindMount reports whether the volume is a bind mount of a host path (its source is an
// absolute path) rather than a named volume.
func (v VolumeMount) IsBindMount() bool { return strings.HasPrefix(v.Source, "/") }

// HostAccessUses names what of the host the spec reaches, in a fixed order, without duplicates:
// "bind" (any bind mount), "privileged", "hostNetwork", "hostPID", "hostIPC", "devices",
// "capAdd" (a capability beyond Docker's defaults). Empty: none. ctl shows it; pkg/hostaccess decides what is allowed.
func (s *ServiceSpec) HostAccessUses() []string {
	var out []string
	for _, v := range s.Volumes {
		if v.IsBindMount() {
			out = append(out, "bind")
			break
		}
	}
	if s.Privileged {
		out = append(out, "privileged")
	}
	if s.HostNetwork {
		out = append(out, "hostNetwork")
	}
	if s.HostPID {
		out = append(out, "hostPID")
	}
	if s.HostIPC {
		out = append(out, "hostIPC")
	}
	if len(s.Devices) > 0 {
		out = append(out, "devices")
	}
	for _, c := range s.CapAdd {
		if !IsDefaultCapability(c) {
			out = append(out, "capAdd")
			break
		}
	}
	return out
}

// validateHostFields checks the shape of the host-access fields. Whether they are allowed is
// not decided here (it depends on the agent's flags): pkg/hostaccess does, at admission and on
// the node.
func validateHostFields(sp path, s *ServiceSpec) ErrorList {
	var errs ErrorList
	if s.HostNetwork {
		// The containers listen on the node's own ports: no Docker network can be joined, and
		// two replicas on one node would claim the same ports.
		if len(s.Networks) > 0 {
			errs.add(sp.child("networks").String(), "must be empty with hostNetwork (the containers use the node's network namespace)")
		}
		if s.Placement == nil || s.Placement.MaxPerNode != 1 {
			errs.add(sp.child("placement").child("maxPerNode").String(), "must be 1 with hostNetwork: two replicas on one node would listen on the same host ports")
		}
	}
	for _, f := range []struct {
		name string
		caps []string
	}{{"capAdd", s.CapAdd}, {"capDrop", s.CapDrop}} {
		seen := map[string]bool{}
		for i, c := range f.caps {
			cp := sp.child(f.name).index(i).String()
			n := NormalizeCapability(c)
			if n != "ALL" && !capabilityRE.MatchString(n) {
				errs.add(cp, "must be a Linux capability name like \"NET_ADMIN\" or ALL, got %q", c)
				continue
			}
			if seen[n] {
				errs.add(cp, "duplicate capability %q", n)
			}
			seen[n] = true
		}
	}
	return errs
}
