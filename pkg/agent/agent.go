package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/apiserver"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/election"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/nodelocal"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/pki"
	"github.com/constellation-sh/constellation/pkg/seal"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
	"github.com/constellation-sh/constellation/pkg/traefik"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version is the agent's version, set at build time with -ldflags.
var Version = "dev"

// GossipStateFile is the file in the data dir where a gracefully stopping agent keeps the
// replicas it publishes, for its next run to announce at once.
const GossipStateFile = "gossip-state.json"

// Agent is one node's control plane.
type Agent struct {
	cfg    *config.Config
	log    *slog.Logger
	reg    *prometheus.Registry
	tokens *auth.File // nil without --api.tokenFile
	// secretTokens are --api.tokenSecret's, mergedTokens the last merge with the file's;
	// both guarded by secretTokensMu.
	secretTokens   *auth.Set
	mergedTokens   mergedTokens
	secretTokensMu sync.Mutex
	ca             *pki.CA
	certs          *pki.CertHolder

	store  store.Store
	raft   *raftstore.Store // nil on the in-memory store
	sealed *seal.Store      // a.store: Secrets sealed at rest
	// clusterTok is the peer secret: raft peers, raft joins and the peer endpoints.
	clusterTok string
	gkeys      gossipKeys // gossip keyring changes and rotations
	view       *observed.Set
	gossip     *gossip.Gossip
	provider   *traefik.Provider
	api        *apiserver.Server
	listener   net.Listener
	apiTLS     bool       // the API listener speaks TLS
	mesh       *meshPlane // nil when the node runs no mesh data plane
	peerOnce   sync.Once
	peerHTTP   *http.Client   // agent-to-agent calls (peerClient)
	docker     *docker.Client // nil when Docker is disabled

	controllerLease *election.Elector
	restore         *restore // --restore (snapshot.go); nil without it
	joinPeers       []string // gossip peers learnt from the join path
	vsync           *viewSync

	systemdAlive func(context.Context) error // tests: replaces the watchdog's check (systemd.go)

	mu sync.Mutex
	// guarded by mu:
	components []component // started in order by Run, stopped in reverse
}

// component is a long-running piece of the agent.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// New builds the agent from cfg: it opens the store and binds the API listener, so that
// configuration and port errors surface before Run.
func New(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	a := &Agent{cfg: cfg, log: log, reg: prometheus.NewRegistry(), view: observed.NewSet(), vsync: newViewSync()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.reg.MustRegister(viewCollector{a.view}) // nodes and replicas by state (viewmetrics.go)
	// --node.advertiseAddress=tailscale, --join=tailscale:TAG (tailscale.go)
	if err := a.resolveTailscale(); err != nil {
		return nil, err
	}
	if err := a.prepareRestore(); err != nil { // before anything is written (snapshot.go)
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := a.loadTokens(); err != nil {
		return nil, err
	}
	if err := a.setupCredentials(); err != nil {
		return nil, err
	}
	if err := a.openStore(); err != nil {
		return nil, err
	}
	if err := a.finishRestore(); err != nil {
		a.store.Close()
		return nil, err
	}
	if err := a.startGossip(); err != nil {
		a.store.Close()
		return nil, err
	}
	a.reg.MustRegister(leaseCollector{st: a.store, node: cfg.Node.Name, log: log}) // leasemetrics.go
	p, err := traefik.NewProvider(traefik.ProviderConfig{Store: a.store, View: a.view, Logger: log, Registerer: a.reg,
		Synced: a.vsync.synced, Health: a.health()})
	if err != nil {
		a.shutdownEarly()
		return nil, err
	}
	a.provider = p
	a.addComponent("traefik-provider", p.Run)
	if err := a.setupControllers(); err != nil {
		a.shutdownEarly()
		return nil, err
	}
	if err := a.setupMesh(); err != nil {
		a.shutdownEarly()
		return nil, err
	}
	if err := a.setupSnapshots(); err != nil {
		a.shutdownEarly()
		return nil, err
	}

	handlers := map[string]http.Handler{
		"GET " + traefik.ProviderPath: p,
		"GET " + traefik.RoutesPath:   p.RoutesHandler(),
		"GET /debug/observed":         http.HandlerFunc(a.serveObserved),
		"GET " + client.MeshPath:      http.HandlerFunc(a.serveMesh),
		"GET /cluster/gossip":         http.HandlerFunc(a.serveGossipInfo),
		"GET " + CredentialsPath:      http.HandlerFunc(a.serveCredentials),
		"GET " + CAPath:               a.serveCA(),
		"GET " + SnapshotPath:         http.HandlerFunc(a.serveSnapshot), // admin (snapshot.go)
		// Profiles (a hung call shows in /debug/pprof/goroutine?debug=2), behind the token
		// like the rest of the API: they expose command lines and memory.
		"GET /debug/pprof/":        http.HandlerFunc(pprof.Index),
		"GET /debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"GET /debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"GET /debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"POST /debug/pprof/symbol": http.HandlerFunc(pprof.Symbol),
		"GET /debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
	if a.raft != nil {
		handlers["POST /cluster/join"] = a.auditPeer(a.raft.JoinHandler())
	}
	handlers["DELETE "+MemberRemovalPath] = http.HandlerFunc(a.serveRemoveMember)
	handlers["POST "+seal.RotatePath] = a.sealed.RotateHandler()
	// Gossip key rotation: the admin route coordinates, the peer paths check the peer secret.
	handlers["POST "+GossipRotatePath] = http.HandlerFunc(a.serveRotateGossipKey)
	gossipKeyPaths := map[string]http.Handler{
		"GET " + GossipKeysPath:       http.HandlerFunc(a.serveGossipKeys),
		"POST " + GossipKeysPath:      http.HandlerFunc(a.serveInstallGossipKey),
		"PUT " + GossipPrimaryKeyPath: http.HandlerFunc(a.serveUseGossipKey),
		"DELETE " + GossipKeyPath:     http.HandlerFunc(a.serveRemoveGossipKey),
	}
	// The peer paths check the peer secret themselves; the CA is public (with proofs over the
	// tokens). The Traefik provider is not public: its configuration holds basic-auth hashes
	// and internal addresses, so Traefik sends a provider token
	// (providers.http.headers.Authorization). Every other handler needs admin.
	public := []string{"GET /cluster/gossip", "POST /cluster/join", "GET " + CAPath}
	for p, h := range gossipKeyPaths {
		handlers[p] = a.auditPeer(h)
		public = append(public, p)
	}
	nodeHandlers, err := a.nodeAPIHandlers() // logs, exec, volumes (nodeapi.go)
	if err != nil {
		a.shutdownEarly()
		return nil, err
	}
	for p, h := range nodeHandlers {
		handlers[p] = h
	}
	public = append(public, nodeapi.PeerImageSavePattern)    // checks the peer secret itself (peerimages.go)
	if err := a.addUIRoutes(handlers, &public); err != nil { // the status page (ui.go)
		a.shutdownEarly()
		return nil, err
	}
	scopes := map[string]auth.Scope{
		"GET " + traefik.ProviderPath: auth.ScopeProvider,
		"GET " + traefik.RoutesPath:   auth.ScopeRead,
		"GET /debug/observed":         auth.ScopeRead,
		"GET " + client.MeshPath:      auth.ScopeRead,
	}
	for p, sc := range nodelocal.Scopes() {
		scopes[p] = sc
	}
	scopes[nodeapi.DiagnosticsPattern] = nodelocal.DiagnosticsScope // ctl doctor
	api, err := apiserver.New(apiserver.Config{
		Store:  a.store,
		Tokens: a.apiTokens,
		// Configured tokens that are not there (yet) never mean "everyone is admin".
		RequireTokens: cfg.API.TokenFile != "" || cfg.API.TokenSecret != "",
		Ready:         a.ready,
		Admit:         a.admit,
		Undo:          a.undo,
		Gatherer:      a.reg,
		Registerer:    a.reg,
		Logger:        log.With("component", "api"),
		Handlers:      handlers,
		Public:        public,
		Scopes:        scopes,
	})
	if err != nil {
		a.shutdownEarly()
		return nil, err
	}
	a.api = api
	ln, err := net.Listen("tcp", cfg.API.Address)
	if err != nil {
		a.shutdownEarly()
		return nil, fmt.Errorf("--api.address %s: %w", cfg.API.Address, err)
	}
	if cfg.API.TLS || !config.IsLoopback(cfg.API.Address) {
		// Off loopback the API speaks TLS with the node certificate; agents present theirs too.
		ln = tls.NewListener(ln, a.certs.APIServerTLS())
		a.apiTLS = true
	}
	a.listener = ln
	if cfg.API.TokenSecret != "" {
		a.addComponent("api-token-secret", func(ctx context.Context) error { return a.watchTokenSecret(ctx, 2*time.Second) })
	}
	if a.tokens != nil {
		a.addComponent("api-tokens", func(ctx context.Context) error {
			a.tokens.Run(ctx, 2*time.Second)
			return nil
		})
	}
	return a, nil
}

func (a *Agent) openStore() error {
	if a.cfg.Store.Memory {
		a.log.Warn("running on the in-memory store: NOTHING IS PERSISTED; every object is lost when the agent stops")
		a.store = store.NewMemory()
	} else if err := a.openRaft(); err != nil {
		return err
	}
	return a.sealStore()
}

func (a *Agent) startGossip() error {
	gc := gossip.DefaultConfig()
	gc.NodeName = a.cfg.Node.Name
	gc.BindAddress = a.cfg.Gossip.Address
	gc.AdvertiseAddress = a.cfg.Node.AdvertiseAddress
	gc.Labels = a.cfg.Node.Labels
	if a.cfg.Docker.Disabled {
		// Gossip-only label: the scheduler places no replica on a node without Docker.
		gc.Labels = map[string]string{observed.LabelRuntime: observed.RuntimeNone}
		for k, v := range a.cfg.Node.Labels {
			gc.Labels[k] = v
		}
	}
	gc.APIAddress = advertised(a.cfg.API.Address, a.cfg.Node.AdvertiseAddress)
	gc.RaftAddress = advertised(a.cfg.Raft.Address, a.cfg.Node.AdvertiseAddress)
	gc.Version = Version
	// What this node publishes survives an agent restart (LeaveForRestart saves it, the next
	// run announces it at once).
	gc.StateFile = filepath.Join(a.cfg.DataDir, GossipStateFile)
	kr, err := a.loadGossipKeyring()
	if err != nil {
		return err
	}
	gc.EncryptionKey, gc.ExtraKeys = kr.Primary(), kr.Keys[1:]
	gc.Set, gc.Logger, gc.Registerer = a.view, a.log, a.reg
	g, err := gossip.New(gc)
	if err != nil {
		return fmt.Errorf("--gossip.address %s: %w", a.cfg.Gossip.Address, err)
	}
	a.gossip = g
	return nil
}

func (a *Agent) shutdownEarly() {
	if a.gossip != nil {
		_ = a.gossip.Shutdown()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	if a.docker != nil {
		_ = a.docker.Close()
	}
}

func (a *Agent) addComponent(name string, run func(ctx context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.components = append(a.components, component{name, run})
}

// APIAddress returns the address the API listens on (useful with port 0).
func (a *Agent) APIAddress() string { return a.listener.Addr().String() }

// APIURL is the API's base URL: https when it speaks TLS.
func (a *Agent) APIURL() string {
	if a.apiTLS {
		return "https://" + a.APIAddress()
	}
	return "http://" + a.APIAddress()
}

// CA returns the cluster CA (for tests and for ctl's trust).
func (a *Agent) CA() *pki.CA { return a.ca }

// Store returns the agent's store (for tests).
func (a *Agent) Store() store.Store { return a.store }

// View returns the agent's observed view (for tests).
func (a *Agent) View() observed.View { return a.view }

// Run serves until ctx ends, then shuts down gracefully: the API stops accepting, gossip leaves
// the cluster, controllers stop, the store closes. Containers are left running.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = a.joinGossip(ctx, a.joinPeers)
		a.vsync.gossipJoined()
		a.watchGossipKeyring(ctx) // a node cut off during a key rotation heals by itself
	}()
	go a.vsync.run(ctx)
	if a.docker != nil {
		go a.vsync.checkNothingLocal(ctx, a.docker, a.cfg.Node.Name)
	}
	// Registration needs a quorum; the rest of the agent (the Docker reconciler, the Traefik
	// provider on the local replica) must run without one, so it is retried in the background.
	go a.register(ctx)

	srv := &http.Server{Handler: a.api, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api: %w", err)
		}
	}()
	a.log.Info("agent started", "node", a.cfg.Node.Name, "api", a.APIAddress(), "gossip", a.gossip.LocalAddress(),
		"advertise", a.cfg.Node.AdvertiseAddress, "version", Version)

	var wg sync.WaitGroup
	a.mu.Lock()
	comps := append([]component(nil), a.components...)
	a.mu.Unlock()
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("component stopped", "component", c.name, "err", err)
				select {
				case errc <- fmt.Errorf("%s: %w", c.name, err):
				default:
				}
			}
		}()
	}

	var storeFailed <-chan struct{}
	if a.raft != nil {
		storeFailed = a.raft.Failed()
	}
	// Under systemd (Type=notify): READY=1 now, WATCHDOG=1 from this loop (systemd.go).
	sd := a.newSystemd()
	wdTick, stopWD := sd.ready(ctx, a)
	defer stopWD()
	var runErr error
main:
	for {
		select {
		case <-ctx.Done():
			break main
		case runErr = <-errc:
			break main
		case <-storeFailed:
			// Everything acknowledged is on disk; the store only recovers by reopening its data dir.
			// Exit so the supervisor restarts the agent; containers keep running meanwhile.
			runErr = fmt.Errorf("store stopped on a storage failure (%v): restart the agent once the disk is fixed; running containers are not touched", a.raft.Err())
			break main
		case <-wdTick:
			sd.watchdog(ctx, a)
		}
	}
	sd.stopping(a)
	a.log.Info("agent stopping")
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	// The containers keep running: tell the others this is a restart, not a departure, so that
	// nothing is re-placed, unrouted or deleted within the restart grace.
	if err := a.gossip.LeaveForRestart(2 * time.Second); err != nil {
		a.log.Warn("gossip leave", "err", err)
	}
	_ = a.gossip.Shutdown()
	if err := a.store.Close(); err != nil {
		a.log.Warn("store close", "err", err)
	}
	if a.docker != nil {
		_ = a.docker.Close()
	}
	a.log.Info("agent stopped")
	return runErr
}

// register creates or refreshes this node's Node object: labels from the configuration are
// authoritative; cordon and drain set through ctl are kept. It retries until it succeeds or ctx
// ends, so a node started while the store has no quorum registers when quorum returns.
func (a *Agent) register(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.registerOnce(rctx)
		cancel()
		switch {
		case err == nil:
			a.log.Info("node registered", "node", a.cfg.Node.Name)
			return
		case ctx.Err() != nil:
			return
		case !errors.Is(err, store.ErrConflict) && attempt%5 == 0:
			a.log.Warn("node registration failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

func (a *Agent) registerOnce(ctx context.Context) error {
	obj, err := a.store.Get(ctx, v1.KindNode, a.cfg.Node.Name)
	if errors.Is(err, store.ErrNotFound) {
		n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}}
		n.Metadata.Name = a.cfg.Node.Name
		n.Spec.Labels = a.cfg.Node.Labels
		announceLevel(n)
		n.Default()
		_, err = a.store.Create(ctx, n)
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("register node %s: %w", a.cfg.Node.Name, err)
		}
		if err != nil {
			return store.ErrConflict // raced with ourselves on another path: retry
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.Node.Name, err)
	}
	n := obj.(*v1.Node)
	n.Spec.Labels = a.cfg.Node.Labels
	announceLevel(n)
	if _, err := a.store.Update(ctx, n); err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.Node.Name, err)
	}
	return nil
}

// ready is /readyz: the store answers and the Traefik provider has a configuration.
func (a *Agent) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := a.store.Revision(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := a.provider.Ready(); err != nil {
		return err
	}
	return nil
}

// admit runs the cross-object checks of the API server.
func (a *Agent) admit(ctx context.Context, obj v1.Object) v1.ErrorList {
	if e := a.admitLevel(ctx, obj); e != nil { // mixed versions during an upgrade (upgrade.go)
		return v1.ErrorList{e}
	}
	sec := a.admitSecurity(ctx, obj) // host access and basic-auth hashes (hostaccess.go)
	svc, ok := obj.(*v1.Service)
	if !ok {
		return sec
	}
	objs, _, err := a.store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return v1.ErrorList{{Field: "metadata.name", Message: "cannot check route conflicts: " + err.Error()}}
	}
	others := make([]*v1.Service, 0, len(objs))
	for _, o := range objs {
		if o.GetMetadata().Name != svc.Metadata.Name {
			others = append(others, o.(*v1.Service))
		}
	}
	errs := append(sec, traefik.AdmitService(svc, others)...)
	// dependsOn cycles against what is stored (ctl apply checks the rest of its batch first).
	if e := v1.DependencyCycle(svc, others); e != nil {
		errs = append(errs, e)
	}
	return errs
}

func (a *Agent) serveObserved(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Nodes    []observed.Node    `json:"nodes"`
		Replicas []observed.Replica `json:"replicas"`
	}{a.view.Nodes(), a.view.Replicas()})
}

// raftRole is the status controller's view of each node's role in the store.
func (a *Agent) raftRole(node string) (v1.RaftRole, bool) {
	if a.raft != nil {
		return a.raftRoleOf(node)
	}
	if a.cfg.Store.Memory {
		if node == a.cfg.Node.Name {
			return v1.RaftLeader, true
		}
		return v1.RaftNone, true
	}
	return "", false
}
