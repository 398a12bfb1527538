package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

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
	peerHTTP   *http.Client // agent-to-agent calls (peerClient)
	// engine is this node's container engine, nil when Docker is disabled; docker is the same
	// engine when it is the whole client (the node API, peer images need it), else nil
	// (engine.go). closeEngine closes the client the agent dialled itself.
	engine      docker.Engine
	docker      *docker.Client
	closeEngine func() error

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
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions is New with what only code hands an agent (engine.go).
func NewWithOptions(cfg *config.Config, log *slog.Logger, opts Options) (*Agent, error) {
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
	if err := a.openEngine(opts); err != nil { // engine.go
		a.shutdownEarly()
		return nil, err
	}
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
	if a.closeEngine != nil {
		_ = a.closeEngine()
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
