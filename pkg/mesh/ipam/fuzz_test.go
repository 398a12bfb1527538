package ipam

import (
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Status is written by anyone with an admin token: FromStatus must take anything, and what it
// accepts must survive ToStatus unchanged.
func FuzzFromStatus(f *testing.F) {
	f.Add("10.213.0.9", int32(0), "10.213.0.10", int32(1), "10.213.0.11")
	f.Add("", int32(-1), "::1", int32(0), "")
	f.Add("1.2.3.4.5", int32(7), "010.1.1.1", int32(7), "10.1.1.1")
	f.Fuzz(func(t *testing.T, vip string, i0 int32, ip0 string, i1 int32, ip1 string) {
		st := v1.ServiceStatus{VirtualIP: vip, ReplicaVirtualIPs: []v1.ReplicaVirtualIP{{Index: i0, IP: ip0}, {Index: i1, IP: ip1}}}
		a, _ := FromStatus(&st)
		var out v1.ServiceStatus
		ToStatus(a, &out)
		b, bad := FromStatus(&out)
		if len(bad) > 0 || !a.Equal(b) {
			t.Fatalf("round trip of %+v: %+v then %+v (bad %q)", st, a, b, bad)
		}
	})
}
