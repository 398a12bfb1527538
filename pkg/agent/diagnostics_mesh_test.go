package agent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	meshdns "github.com/constellation-sh/constellation/pkg/mesh/dns"
	"github.com/constellation-sh/constellation/pkg/store"
)

// TestQueryMeshDNS runs the doctor's mesh DNS probe against a real mesh name server on a
// loopback port: a Service's virtual IP answered (OK), a wrong or missing answer (error), the
// NXDOMAIN probe without Services (OK), and a server that is gone (error).
func TestQueryMeshDNS(t *testing.T) {
	srv, err := meshdns.New(meshdns.Config{Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	defer st.Close()
	a := &Agent{store: st, mesh: &meshPlane{dns: srv, dnsAddr: netip.MustParseAddr("127.0.0.1")}}
	query := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, q, err := a.queryMeshDNS(ctx)
		return q, err
	}

	if q, err := query(); err != nil || q != "doctor-probe."+MeshDomain {
		t.Fatalf("no Service: asked %q: %v (an NXDOMAIN answer is an answer)", q, err)
	}

	ctx := context.Background()
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"}}
	svc.Spec.Image = "x"
	svc.Default()
	o, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*v1.Service)
	s.Status.VirtualIP = "10.213.9.9"
	if _, err := st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	srv.SetTable(meshdns.NewTable([]meshdns.Service{{Name: "web", VIP: netip.MustParseAddr("10.213.9.9")}}, nil))
	if q, err := query(); err != nil || q != "web."+MeshDomain {
		t.Fatalf("web answered: asked %q: %v", q, err)
	}
	srv.SetTable(meshdns.NewTable([]meshdns.Service{{Name: "web", VIP: netip.MustParseAddr("10.213.9.10")}}, nil))
	if _, err := query(); err == nil {
		t.Fatal("a wrong address for web: no error")
	}
	srv.SetTable(meshdns.NewTable(nil, nil))
	if _, err := query(); err == nil {
		t.Fatal("web unknown to the name server: no error")
	}
	srv.Close()
	if _, err := query(); err == nil {
		t.Fatal("a closed name server: no error")
	}
}
