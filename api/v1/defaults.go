package v1

import "time"

// Defaults applied by Default. They are documented on the fields too.
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = time.Second
	DefaultHealthRetries  = 3
	DefaultDNSTTL         = 60
	DefaultLeaseSeconds   = 15
)

func ptr[T any](v T) *T { return &v }

func defaultMeta(tm *TypeMeta, kind string) {
	if tm.APIVersion == "" {
		tm.APIVersion = APIVersion
	}
	if tm.Kind == "" {
		tm.Kind = kind
	}
}

// Default fills in what the operator left out.
func (s *Service) Default() {
	defaultMeta(&s.TypeMeta, KindService)
	sp := &s.Spec
	defaultFailover(sp)
	defaultFiles(sp.Files)
	if sp.Replicas == nil && !sp.IsGlobal() {
		sp.Replicas = ptr(int32(1))
	}
	for i := range sp.Ports {
		if sp.Ports[i].Protocol == "" {
			sp.Ports[i].Protocol = ProtocolTCP
		}
	}
	if hc := sp.HealthCheck; hc != nil {
		if hc.Interval == nil {
			hc.Interval = &Duration{DefaultHealthInterval}
		}
		if hc.Timeout == nil {
			t := DefaultHealthTimeout
			if hc.Interval.Duration < t {
				t = hc.Interval.Duration
			}
			hc.Timeout = &Duration{t}
		}
		if hc.Retries == nil {
			hc.Retries = ptr(int32(DefaultHealthRetries))
		}
		if hc.StartPeriod == nil {
			hc.StartPeriod = &Duration{}
		}
		if hc.HTTP != nil && hc.HTTP.Path == "" {
			hc.HTTP.Path = "/"
		}
	}
	if sp.Update == nil {
		sp.Update = &UpdateStrategy{}
	}
	u := sp.Update
	if u.Order == "" && (sp.HostNetwork || sp.IsGlobal() || len(sp.HostPorts()) > 0) {
		// A hostNetwork or hostPort replica holds its node's ports, and a global Service runs
		// one replica per node: the new one can only start where the old one stopped, so
		// start-first would never progress on a full cluster.
		u.Order = StopFirst
	}
	if u.Order == "" {
		u.Order = StartFirst
	}
	if u.MaxSurge == nil {
		if u.Order == StartFirst {
			u.MaxSurge = ptr(int32(1))
		} else {
			u.MaxSurge = ptr(int32(0))
		}
	}
	if u.MaxUnavailable == nil {
		if u.Order == StartFirst {
			u.MaxUnavailable = ptr(int32(0))
		} else {
			u.MaxUnavailable = ptr(int32(1))
		}
	}
	if r := sp.Routes; r != nil {
		for i := range r.HTTP {
			if len(r.HTTP[i].EntryPoints) == 0 {
				if r.HTTP[i].TLS != nil {
					r.HTTP[i].EntryPoints = []string{"websecure"}
				} else {
					r.HTTP[i].EntryPoints = []string{"web"}
				}
			}
		}
	}
}

// Default fills in what the operator left out.
func (d *DNSRecord) Default() {
	defaultMeta(&d.TypeMeta, KindDNSRecord)
	if d.Spec.TTL == 0 {
		d.Spec.TTL = DefaultDNSTTL
	}
	if d.Spec.Type == "" {
		d.Spec.Type = RecordA
	}
}

// Default fills in what the operator left out.
func (l *Lease) Default() {
	defaultMeta(&l.TypeMeta, KindLease)
	if l.Spec.HolderIdentity != "" && l.Spec.LeaseDurationSeconds == 0 {
		l.Spec.LeaseDurationSeconds = DefaultLeaseSeconds
	}
}

// Default fills in what the operator left out.
func (r *ReplicaSet) Default() {
	defaultMeta(&r.TypeMeta, KindReplicaSet)
	if r.Spec.Redis != nil && r.Spec.Redis.MasterName == "" {
		r.Spec.Redis.MasterName = r.Metadata.Name
	}
	if r.Spec.Redis != nil && r.Spec.Redis.PasswordSecret != nil && r.Spec.Redis.PasswordSecret.Key == "" {
		r.Spec.Redis.PasswordSecret.Key = DefaultRedisPasswordKey
	}
}

// Default fills in what the operator left out.
func (n *Node) Default() { defaultMeta(&n.TypeMeta, KindNode) }

// Default fills in what the operator left out.
func (s *Secret) Default() { defaultMeta(&s.TypeMeta, KindSecret) }
