// Probing members: hello and replSetGetStatus on every desired member at once, and the config
// host, service and Target of a member (pure).

package mongo

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

type helloReply struct {
	IsWritablePrimary bool   `bson:"isWritablePrimary"`
	Secondary         bool   `bson:"secondary"`
	SetName           string `bson:"setName"`
	SetVersion        int64  `bson:"setVersion"`
	Primary           string `bson:"primary"`
	Me                string `bson:"me"`
	IsReplicaSet      bool   `bson:"isreplicaset"`
}

type statusMember struct {
	ID            int64   `bson:"_id"`
	Name          string  `bson:"name"`
	Health        float64 `bson:"health"`
	State         int     `bson:"state"`
	StateStr      string  `bson:"stateStr"`
	ConfigVersion int64   `bson:"configVersion"`
	ConfigTerm    int64   `bson:"configTerm"`
	Self          bool    `bson:"self"`
}

type statusReply struct {
	Set     string         `bson:"set"`
	MyState int            `bson:"myState"`
	Term    int64          `bson:"term"`
	Members []statusMember `bson:"members"`
}

// probe is what one member answered.
type probe struct {
	m         replicaset.Member
	helloErr  error
	hello     helloReply
	statusErr error
	status    *statusReply
}

func (p *probe) reachable() bool { return p.helloErr == nil }

func (p *probe) initiated(set string) bool { return p.reachable() && p.hello.SetName == set }

func (e *Engine) probeAll(ctx context.Context, members []replicaset.Member) []*probe {
	ps := make([]*probe, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		ps[i] = &probe{m: m}
		wg.Add(1)
		go func(p *probe) {
			defer wg.Done()
			p.helloErr = e.run(ctx, p.m, 0, bson.D{{Key: "hello", Value: 1}}, &p.hello)
			if p.helloErr != nil {
				return
			}
			// A member in a config answers with its own config host: if the address led to
			// another member, nothing it says is about this one.
			if p.hello.Me != "" && p.hello.Me != hostOf(p.m) {
				p.helloErr = fmt.Errorf("%w: %s at %s answers as %q", ErrUnreachable, p.m.Name, p.m.Dial, p.hello.Me)
				p.hello = helloReply{}
				return
			}
			var st statusReply
			if p.statusErr = e.run(ctx, p.m, 0, bson.D{{Key: "replSetGetStatus", Value: 1}}, &st); p.statusErr == nil {
				p.status = &st
			}
		}(ps[i])
	}
	wg.Wait()
	return ps
}

// hostOf is the name a member has in the config.
func hostOf(m replicaset.Member) string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

func serviceOf(m replicaset.Member) string {
	return strings.TrimSuffix(m.Name, "-"+strconv.Itoa(m.Index))
}

func targetsOf(d replicaset.Desired, spec *v1.MongoReplicaSet) []Target {
	ts := make([]Target, 0, len(d.Members))
	for _, m := range d.Members {
		p := 1.0
		if v, ok := spec.Priorities[serviceOf(m)]; ok {
			p = v
		}
		ts = append(ts, Target{Name: m.Name, Host: hostOf(m), Priority: p, Ready: m.Ready})
	}
	return ts
}
