package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/doctor"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/store"
)

// diagnostics computes this node's checks for `ctl doctor` (GET /node/{node}/diagnostics,
// docs/doctor.md): the agent measures, pkg/doctor judges.
func (a *Agent) diagnostics(ctx context.Context) nodeapi.Diagnostics {
	return a.doctorLocal().Run(ctx)
}

// doctorLocal is this agent's doctor.Local: what each check reads.
func (a *Agent) doctorLocal() doctor.Local {
	l := doctor.Local{
		Node:       a.cfg.Node.Name,
		Version:    Version,
		DockerHost: a.cfg.Docker.Host,
		Ports:      a.diagnosticPorts(),
		DataDir:    a.cfg.DataDir,
		Gossip:     a.gossipInfo,
		Nodes:      a.nodeNames,
		LB:         a.cfg.Node.Labels["role"] == "lb",
		Polls:      a.traefikPolls,
		Certs:      a.diagnosticCerts,
	}
	if eng, ok := a.engine.(engineInfo); ok { // engine.go
		l.Docker = func(ctx context.Context) (string, error) {
			if err := eng.Ping(ctx); err != nil {
				return "", err
			}
			return eng.APIVersion(), nil
		}
	}
	if a.raft != nil {
		l.Raft = a.raftInfo
	}
	if a.cfg.DNS.Cloudflare.TokenFile != "" {
		l.Cloudflare = a.checkCloudflare
	}
	if a.mesh != nil {
		l.MeshDNS = a.queryMeshDNS
	}
	return l
}

func (a *Agent) diagnosticPorts() []doctor.Port {
	ports := []doctor.Port{{Name: "api", Address: a.APIAddress()}}
	if a.raft != nil {
		addr := a.cfg.Raft.Address
		for _, m := range a.raft.Members() {
			if m.ID == a.raft.ID() && m.RaftAddress != "" {
				addr = m.RaftAddress // the bound port when configured as :0
			}
		}
		ports = append(ports, doctor.Port{Name: "raft", Address: addr})
	}
	return append(ports, doctor.Port{Name: "gossip", Address: a.gossip.LocalAddress()})
}

func (a *Agent) raftInfo() *nodeapi.RaftInfo {
	info := &nodeapi.RaftInfo{Role: string(a.raft.Role()), Voters: []string{}}
	if l, ok := a.raft.Leader(); ok {
		info.Leader = l.Name
	}
	for _, m := range a.raft.Members() {
		switch m.Role {
		case v1.RaftLeader, v1.RaftFollower:
			info.Voters = append(info.Voters, m.Name)
		case v1.RaftLearner:
			info.Learners = append(info.Learners, m.Name)
		}
	}
	return info
}

func (a *Agent) gossipInfo() nodeapi.GossipInfo {
	kr := a.gossip.Keyring()
	g := nodeapi.GossipInfo{Keys: len(kr.Keys), Alive: []string{}}
	if p := kr.Primary(); len(p) > 0 {
		g.PrimaryKey = gossip.Fingerprint(p)
	}
	for _, m := range a.gossip.Members() {
		g.Alive = append(g.Alive, m.Name)
	}
	sort.Strings(g.Alive)
	return g
}

// nodeNames are the Node objects of the local replica (stale: it works without a quorum).
func (a *Agent) nodeNames(ctx context.Context) ([]string, error) {
	objs, _, err := a.store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetMetadata().Name)
	}
	sort.Strings(out)
	return out, nil
}

func (a *Agent) traefikPolls() []doctor.Poll {
	ps := a.provider.Polls()
	out := make([]doctor.Poll, 0, len(ps))
	for _, p := range ps {
		out = append(out, doctor.Poll{Client: p.Client, Agent: p.Agent, Last: p.Last, Status: p.Status, Count: p.Count})
	}
	return out
}

func (a *Agent) diagnosticCerts() []doctor.Cert {
	var out []doctor.Cert
	if a.certs != nil {
		if c := a.certs.Certificate(); c != nil && c.Leaf != nil {
			out = append(out, doctor.Cert{Name: "node", NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter, Renewed: true})
		}
	}
	if a.ca != nil {
		c := a.ca.Certificate()
		out = append(out, doctor.Cert{Name: "cluster CA", NotBefore: c.NotBefore, NotAfter: c.NotAfter})
	}
	return out
}

// doctorProbeZone is looked up when no zone is configured: a valid token answers "not found",
// an invalid one is refused.
const doctorProbeZone = "constellation-doctor.invalid"

// checkCloudflare reads the token file again (a fixed token shows without a restart) and looks
// every zone in use up: --dns.nodeRecords.zone and the DNSRecords' spec.zone.
func (a *Agent) checkCloudflare(ctx context.Context) ([]doctor.Zone, error) {
	tok, err := cloudflare.ReadTokenFile(a.cfg.DNS.Cloudflare.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("--dns.cloudflare.tokenFile: %w", err)
	}
	cf, err := cloudflare.New(tok, cloudflare.Config{APIURL: a.cfg.DNS.Cloudflare.APIURL}, cloudflare.WithLogger(a.log))
	if err != nil {
		return nil, fmt.Errorf("--dns.cloudflare.apiURL: %w", err)
	}
	names := map[string]bool{}
	if z := a.cfg.DNS.NodeRecords.Zone; z != "" {
		names[strings.TrimSuffix(strings.ToLower(z), ".")] = true
	}
	objs, _, err := a.store.List(ctx, v1.KindDNSRecord, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, fmt.Errorf("list dnsrecords: %w", err)
	}
	for _, o := range objs {
		if z := o.(*v1.DNSRecord).Spec.Zone; z != "" {
			names[strings.TrimSuffix(strings.ToLower(z), ".")] = true
		}
	}
	if len(names) == 0 {
		if _, err := cf.ZoneID(ctx, doctorProbeZone); err != nil && !errors.Is(err, cloudflare.ErrZoneNotFound) {
			return nil, err
		}
		return nil, nil
	}
	var zones []doctor.Zone
	for n := range names {
		_, err := cf.ZoneID(ctx, n)
		if err != nil && !errors.Is(err, cloudflare.ErrZoneNotFound) {
			return nil, err // the token (or the API) is the problem, not the zone
		}
		if err != nil {
			err = doctor.ErrZoneNotFound
		}
		zones = append(zones, doctor.Zone{Name: n, Err: err})
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].Name < zones[j].Name })
	return zones, nil
}

// queryMeshDNS asks the mesh name server for a Service with a virtual IP (and checks the answer),
// else for a name that does not exist (an NXDOMAIN answer is an answer).
func (a *Agent) queryMeshDNS(ctx context.Context) (string, string, error) {
	addrs := a.mesh.dns.Addrs()
	if len(addrs) == 0 {
		return a.mesh.dnsAddr.String(), "", errors.New("the name server listens nowhere")
	}
	addr := addrs[0].String()
	name, want := "doctor-probe."+MeshDomain, ""
	if objs, _, err := a.store.List(ctx, v1.KindService, v1.Selector{}, store.Stale()); err == nil {
		for _, o := range objs {
			if s := o.(*v1.Service); s.Status.VirtualIP != "" {
				name, want = s.Metadata.Name+"."+MeshDomain, s.Status.VirtualIP
				break
			}
		}
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
	}}
	ips, err := r.LookupHost(ctx, name)
	var dnsErr *net.DNSError
	switch {
	case want == "" && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return addr, name, nil
	case err != nil:
		return addr, name, err
	case want != "" && !containsString(ips, want):
		return addr, name, fmt.Errorf("answered %v, want the virtual IP %s", ips, want)
	}
	return addr, name, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
