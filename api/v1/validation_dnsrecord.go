package v1

import (
	"net"
	"strings"
)

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
