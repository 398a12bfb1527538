package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	meshdns "github.com/constellation-sh/constellation/pkg/mesh/dns"
	"github.com/constellation-sh/constellation/pkg/mesh/httpproxy"
	"github.com/constellation-sh/constellation/pkg/mesh/iface"
	"github.com/constellation-sh/constellation/pkg/mesh/ipam"
	"github.com/constellation-sh/constellation/pkg/mesh/plan"
	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// MeshDomain is the mesh's DNS domain: <svc>.constellation.internal (docs/mesh.md).
const MeshDomain = "constellation.internal"

// meshPlane is this node's part of the mesh (docs/mesh.md): the virtual IPs on lo, the proxy
// listening on them, and the name server containers resolve through. It follows the local
// replica of the store and the gossip view, so it keeps forwarding without a raft quorum.
type meshPlane struct {
	a      *Agent
	log    *slog.Logger
	prefix netip.Prefix
	// dnsAddr is the name server's address: the prefix's first host address (.1), which the
	// virtual IP allocator never hands out. It is the same on every node, so a container's
	// resolver setting does not depend on where it runs.
	dnsAddr netip.Addr
	lo      iface.Link
	px      *proxy.Proxy
	hpx     *httpproxy.Proxy // appProtocol http ports and upstream Services (docs/proxy.md)
	dns     *meshdns.Server
	svcs    *ctrl.Cache[*v1.Service]
	sets    *ctrl.Cache[*v1.ReplicaSet] // <rs>-primary names (meshprimary.go)
	poke    chan struct{}
}

// meshDNSAddress is the mesh name server's address for --mesh.cidr, "" when the mesh is off.
func meshDNSAddress(cfg *config.Config) string {
	if cfg.Mesh.Disabled {
		return ""
	}
	p, err := config.ParseMeshCIDR(cfg.Mesh.CIDR)
	if err != nil {
		return ""
	}
	return p.Addr().Next().String()
}

// setupMesh builds the plane; the agent runs it as a component. It runs on a node without
// Docker too: the host itself, and the controllers this node may run (the replica-set
// controller dials members at their virtual IPs), reach Services by mesh address. With
// --mesh.disabled there is none.
func (a *Agent) setupMesh() error {
	addr := meshDNSAddress(a.cfg)
	if addr == "" {
		return nil
	}
	prefix, err := config.ParseMeshCIDR(a.cfg.Mesh.CIDR)
	if err != nil {
		return fmt.Errorf("--mesh.cidr: %w", err)
	}
	lo, err := iface.Loopback()
	if err != nil {
		return err
	}
	log := a.log.With("component", "mesh")
	pcfg := proxy.DefaultConfig()
	pcfg.Registerer, pcfg.Logger, pcfg.ListenConfig = a.reg, log, proxy.FreeBindListenConfig()
	px, err := proxy.New(pcfg)
	if err != nil {
		return fmt.Errorf("mesh proxy: %w", err)
	}
	hpx, err := httpproxy.New(httpproxy.Config{Registerer: a.reg, Logger: log, ListenConfig: proxy.FreeBindListenConfig()})
	if err != nil {
		return fmt.Errorf("mesh http proxy: %w", err)
	}
	dcfg := meshdns.DefaultConfig()
	dcfg.Logger, dcfg.Registerer = log, a.reg
	dns, err := meshdns.New(dcfg)
	if err != nil {
		return fmt.Errorf("mesh name server: %w", err)
	}
	m := &meshPlane{a: a, log: log, prefix: prefix, dnsAddr: netip.MustParseAddr(addr), lo: lo, px: px, hpx: hpx, dns: dns,
		poke: make(chan struct{}, 1)}
	poke := func() {
		select {
		case m.poke <- struct{}{}:
		default:
		}
	}
	m.svcs = ctrl.NewCache(a.store, v1.KindService, ctrl.CacheConfig[*v1.Service]{
		Logger: log,
		Handler: ctrl.Handler[*v1.Service]{
			OnAdd:    func(*v1.Service) { poke() },
			OnUpdate: func(_, _ *v1.Service) { poke() },
			OnDelete: func(*v1.Service) { poke() },
		},
	})
	m.sets = ctrl.NewCache(a.store, v1.KindReplicaSet, ctrl.CacheConfig[*v1.ReplicaSet]{
		Logger:  log,
		Handler: ctrl.Handler[*v1.ReplicaSet]{OnAdd: func(*v1.ReplicaSet) { poke() }, OnUpdate: func(_, _ *v1.ReplicaSet) { poke() }, OnDelete: func(*v1.ReplicaSet) { poke() }},
	})
	a.mesh = m
	a.addComponent("mesh", m.run)
	return nil
}

// serveMesh is GET /api/mesh (read scope): this node's listeners and endpoints as its proxy
// holds them, with the connections open to each (ctl routes --mesh).
func (a *Agent) serveMesh(w http.ResponseWriter, _ *http.Request) {
	v := client.MeshView{Node: a.cfg.Node.Name, Listeners: []client.MeshListener{}}
	if m := a.mesh; m != nil {
		v.Enabled = true
		v.NameServer = netip.AddrPortFrom(m.dnsAddr, 53).String()
		for _, e := range m.px.Snapshot() {
			l := client.MeshListener{VIP: e.VIP.String(), Port: int(e.Port), Protocol: string(e.Protocol), Service: e.Service,
				Endpoints: []client.MeshEndpoint{}}
			for _, ep := range e.Endpoints {
				l.Endpoints = append(l.Endpoints, client.MeshEndpoint{Node: ep.Node, Address: ep.Address, Healthy: ep.Healthy, Local: ep.Local, Active: ep.Active})
			}
			v.Listeners = append(v.Listeners, l)
		}
		for _, e := range m.hpx.Snapshot() {
			l := client.MeshListener{VIP: e.VIP.String(), Port: int(e.Port), Protocol: "http", Service: e.Service,
				Endpoints: []client.MeshEndpoint{}}
			for _, u := range e.Upstreams {
				l.Endpoints = append(l.Endpoints, client.MeshEndpoint{Node: "-", Address: u.Name, Healthy: u.Healthy, Breaker: string(u.Breaker)})
			}
			v.Listeners = append(v.Listeners, l)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// run keeps the plane in step with the Services and the view until ctx ends. It never fails the
// agent: what it cannot do (an address, a port) is logged and retried on the next change or
// resync.
func (m *meshPlane) run(ctx context.Context) error {
	go m.svcs.Run(ctx)
	go m.sets.Run(ctx)
	go observed.OnChange(ctx, nil, m.a.view, 0, func() {
		select {
		case m.poke <- struct{}{}:
		default:
		}
	})
	defer m.stop()
	resync := time.NewTicker(30 * time.Second)
	defer resync.Stop()
	var dnsUp bool
	var lastErr string
	for {
		out, err := m.sync()
		if !dnsUp && err == nil {
			if _, lerr := m.dns.Listen(netip.AddrPortFrom(m.dnsAddr, 53).String()); lerr != nil {
				err = fmt.Errorf("mesh name server on %s:53: %w", m.dnsAddr, lerr)
			} else {
				dnsUp = true
				m.log.Info("mesh up", "nameserver", m.dnsAddr.String(), "domain", MeshDomain, "listeners", len(out.Table))
			}
		}
		if msg := errString(err); msg != lastErr {
			if err != nil {
				m.log.Warn("mesh not fully in step; retrying on the next change", "err", err)
			}
			lastErr = msg
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.poke:
		case <-resync.C:
		}
		// Let a burst of changes settle into one sync.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sync computes the plane and applies it: addresses first (the listeners bind to them, and the
// name server's address is one of them), then the proxy's table, then the names.
func (m *meshPlane) sync() (plan.Output, error) {
	nodes := m.a.view.Nodes()
	alive := map[string]bool{}
	for _, n := range nodes {
		alive[n.Name] = n.Alive
	}
	svcs := m.svcs.List()
	sets := m.sets.List()
	out := plan.Compute(plan.Input{
		Node: m.a.cfg.Node.Name, Services: svcs, Replicas: m.a.view.Replicas(),
		Alive: func(n string) bool { return alive[n] }, Prefix: m.prefix,
		ReplicaSets: sets,
	})
	want := append(slices.Clone(out.Addresses), m.dnsAddr)
	_, aerr := iface.Sync(m.lo, m.prefix, want)
	perr := m.px.Sync(out.Table)
	herr := m.hpx.Sync(out.HTTP)
	m.dns.SetTable(nameTable(svcs, primaryTargets(sets, svcs)))
	return out, errors.Join(aerr, perr, herr)
}

// nameTable is the name server's table: every Service's virtual IP, and replica i's for
// i below spec.replicas (scaled-away indices keep their address but do not resolve).
func nameTable(svcs []*v1.Service, sets []meshdns.ReplicaSet) *meshdns.Table {
	var entries []meshdns.Service
	for _, s := range svcs {
		if s.Metadata.DeletionTimestamp != nil {
			continue
		}
		addrs, _ := ipam.FromStatus(&s.Status)
		if !addrs.Service.IsValid() {
			continue
		}
		replicas := int32(1)
		if s.Spec.Replicas != nil {
			replicas = *s.Spec.Replicas
		}
		e := meshdns.Service{Name: s.Metadata.Name, VIP: addrs.Service, Replicas: map[int]netip.Addr{}}
		for i, a := range addrs.Replicas {
			if i < replicas {
				e.Replicas[int(i)] = a
			}
		}
		entries = append(entries, e)
	}
	return meshdns.NewTable(entries, sets)
}

// stop closes the listeners and takes the addresses off lo (a stopped agent serves nothing; a
// restarted one puts them back at once). Open proxied connections get a short grace.
func (m *meshPlane) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = m.px.Shutdown(ctx)
	_ = m.hpx.Shutdown(ctx)
	_ = m.dns.Close()
	if _, err := iface.Sync(m.lo, m.prefix, nil); err != nil {
		m.log.Warn("mesh addresses left on lo", "err", err)
	}
}
