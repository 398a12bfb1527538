package tailscaletest

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/constellation-sh/constellation/pkg/tailscale"
)

// Fake is a fake tailscaled.
type Fake struct {
	// Socket is the unix socket it listens on.
	Socket string
	srv    *http.Server

	mu sync.Mutex
	// guarded by mu:
	status   tailscale.Status
	denied   bool
	requests int
}

// Start serves status on a new unix socket, closed at the end of the test.
func Start(t testing.TB, status tailscale.Status) *Fake {
	t.Helper()
	// Unix socket paths are short (108 bytes): not under t.TempDir's long names.
	dir, err := os.MkdirTemp("", "tsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := &Fake{Socket: filepath.Join(dir, "tailscaled.sock"), status: status}
	ln, err := net.Listen("unix", f.Socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/localapi/v0/status", f.serveStatus)
	f.srv = &http.Server{Handler: f.check(mux)}
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(f.Stop)
	return f
}

// Stop closes the socket (tailscaled stopped: the socket file goes away with it).
func (f *Fake) Stop() {
	_ = f.srv.Close()
	_ = os.Remove(f.Socket)
}

// SetStatus replaces what status answers.
func (f *Fake) SetStatus(s tailscale.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = s
}

// Deny makes status answer 403, as tailscaled does to a user it does not permit.
func (f *Fake) Deny(d bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied = d
}

// Requests is how many requests reached the status handler.
func (f *Fake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// check is tailscaled's localapi.Handler.ServeHTTP guard.
func (f *Fake) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Referer() != "" || r.Header.Get("Origin") != "" || (r.Host != "" && r.Host != tailscale.LocalAPIHost) {
			http.Error(w, "invalid localapi request", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *Fake) serveStatus(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	st, denied := f.status, f.denied
	f.mu.Unlock()
	if denied {
		http.Error(w, "status access denied", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "want GET", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Tailscale-Version", st.Version)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "\t") // as tailscaled's
	_ = enc.Encode(st)
}

// Node is a tailnet node for Status.
func Node(host string, online bool, ips []string, tags ...string) *tailscale.PeerStatus {
	return &tailscale.PeerStatus{ID: "n" + host, HostName: host, DNSName: host + ".tail1234.ts.net.", OS: "linux",
		TailscaleIPs: ips, Tags: tags, Online: online}
}

// Running is the status of a connected node self with peers, keyed as tailscaled keys them
// (by node key).
func Running(self *tailscale.PeerStatus, peers ...*tailscale.PeerStatus) tailscale.Status {
	st := tailscale.Status{Version: "1.80.0-fake", BackendState: tailscale.StateRunning, TailscaleIPs: self.TailscaleIPs,
		Self: self, Peer: map[string]*tailscale.PeerStatus{}, MagicDNSSuffix: "tail1234.ts.net"}
	for _, p := range peers {
		st.Peer["nodekey:"+p.ID] = p
	}
	return st
}
