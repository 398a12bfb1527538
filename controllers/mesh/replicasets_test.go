package mesh

import (
	"context"
	"fmt"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// A ReplicaSet gets one virtual IP (status.virtualIP, the address of <rs>-primary) from the
// same table as the Services: never one a Service holds, kept once held.
func TestReplicaSetVirtualIP(t *testing.T) {
	e := newEnv(t, &hookStore{Store: store.NewMemory()}, "10.213.0.0/28") // 13 usable
	e.create(service("db", 3))
	e.run()
	svc := e.allocated("db", 3)
	rs := &v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet},
		Metadata: v1.ObjectMeta{Name: "cache"},
		Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"db"},
			Redis: &v1.RedisReplicaSet{MasterName: "cache", Sentinel: "cache-sentinel"}}}
	if _, err := e.st.Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var got string
	eventually(t, "replicasets/cache virtualIP", func() error {
		o, err := e.st.Get(context.Background(), v1.KindReplicaSet, "cache")
		if err != nil {
			return err
		}
		got = o.(*v1.ReplicaSet).Status.VirtualIP
		if got == "" {
			return fmt.Errorf("no virtualIP yet")
		}
		return nil
	})
	for _, a := range addrs(svc) {
		if a == got {
			t.Fatalf("replica set got %s, which services/db holds", got)
		}
	}
	// A new Service never gets the replica set's address.
	e.create(service("web", 5))
	web := e.allocated("web", 5)
	for _, a := range addrs(web) {
		if a == got {
			t.Fatalf("services/web got %s, which replicasets/cache holds", got)
		}
	}
	o, _ := e.st.Get(context.Background(), v1.KindReplicaSet, "cache")
	if o.(*v1.ReplicaSet).Status.VirtualIP != got {
		t.Fatal("the replica set's virtual IP changed")
	}
}
