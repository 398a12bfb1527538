package tailscale_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/constellation-sh/constellation/pkg/tailscale"
	"github.com/constellation-sh/constellation/pkg/tailscale/tailscaletest"
)

func tailnet() tailscale.Status {
	self := tailscaletest.Node("n2", true, []string{"100.64.0.2", "fd7a:115c:a1e0::2"}, "tag:constellation")
	return tailscaletest.Running(self,
		tailscaletest.Node("n3", true, []string{"100.64.0.3", "fd7a:115c:a1e0::3"}, "tag:constellation"),
		tailscaletest.Node("n1", true, []string{"fd7a:115c:a1e0::1", "100.64.0.1"}, "tag:web", "tag:constellation"),
		tailscaletest.Node("a-offline", false, []string{"100.64.0.9"}, "tag:constellation"),
		tailscaletest.Node("laptop", true, []string{"100.64.0.7"}),
		tailscaletest.Node("v6only", true, []string{"fd7a:115c:a1e0::8"}, "tag:constellation"),
		tailscaletest.Node("other", true, []string{"100.64.0.6"}, "tag:constellation-dev"),
	)
}

func TestDiscovery(t *testing.T) {
	f := tailscaletest.Start(t, tailnet())
	st, err := tailscale.New(f.Socket).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ip, err := st.SelfIPv4()
	if err != nil || ip.String() != "100.64.0.2" {
		t.Fatalf("self %v %v", ip, err)
	}
	peers, err := st.PeersWithTag("tag:constellation")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range peers {
		got = append(got, p.Name+"="+p.IP.String())
	}
	// Online, tagged, with an IPv4, sorted by name; not the offline one, not the untagged
	// laptop, not a tag that merely starts the same, not an IPv6-only node.
	want := "n1.tail1234.ts.net=100.64.0.1,n3.tail1234.ts.net=100.64.0.3"
	if strings.Join(got, ",") != want {
		t.Fatalf("peers %v, want %s", got, want)
	}
	if peers, _ := st.PeersWithTag("tag:none"); len(peers) != 0 {
		t.Fatalf("untagged discovery found %v", peers)
	}
}

func TestNotConnected(t *testing.T) {
	for state, want := range map[string]string{
		tailscale.StateNeedsLogin:       "tailscale up",
		tailscale.StateStopped:          "Stopped",
		tailscale.StateNeedsMachineAuth: "admin console",
		tailscale.StateStarting:         "still starting",
	} {
		st := tailnet()
		st.BackendState = state
		st.Self.TailscaleIPs, st.TailscaleIPs = nil, nil
		if state == tailscale.StateStopped {
			st.Self.TailscaleIPs = []string{"100.64.0.2"} // a stopped node still knows its IPs
		}
		f := tailscaletest.Start(t, st)
		got, err := tailscale.New(f.Socket).Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = got.SelfIPv4()
		if !errors.Is(err, tailscale.ErrNotConnected) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), state) {
			t.Errorf("%s: SelfIPv4: %v, want ErrNotConnected saying %q", state, err, want)
		}
		if _, err := got.PeersWithTag("tag:constellation"); !errors.Is(err, tailscale.ErrNotConnected) {
			t.Errorf("%s: PeersWithTag: %v", state, err)
		}
	}
	st := tailnet()
	st.BackendState, st.AuthURL = tailscale.StateNeedsLogin, "https://login.tailscale.com/a/abc"
	if err := st.Connected(); err == nil || !strings.Contains(err.Error(), st.AuthURL) {
		t.Errorf("NeedsLogin with an auth URL: %v", err)
	}
}

func TestNotRunning(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "tailscaled.sock")
	_, err := tailscale.New(missing).Status(context.Background())
	if !errors.Is(err, tailscale.ErrNotRunning) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing socket: %v", err)
	}
	// A socket file left behind by a tailscaled that died: connection refused.
	f := tailscaletest.Start(t, tailnet())
	stale := f.Socket + ".stale"
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	defer os.Remove(stale)
	if _, err := tailscale.New(stale).Status(context.Background()); !errors.Is(err, tailscale.ErrNotRunning) {
		t.Fatalf("stale socket: %v", err)
	}
	f.Stop()
	if _, err := tailscale.New(f.Socket).Status(context.Background()); !errors.Is(err, tailscale.ErrNotRunning) {
		t.Fatalf("stopped tailscaled: %v", err)
	}
}

func TestAccessDenied(t *testing.T) {
	f := tailscaletest.Start(t, tailnet())
	f.Deny(true)
	_, err := tailscale.New(f.Socket).Status(context.Background())
	if !errors.Is(err, tailscale.ErrAccessDenied) || !strings.Contains(err.Error(), "status access denied") {
		t.Fatalf("denied: %v", err)
	}
}

// The fake is faithful where the client relies on it: another Host is refused as tailscaled
// refuses it, so the client's Host header is what makes its requests pass.
func TestFakeRefusesOtherHosts(t *testing.T) {
	f := tailscaletest.Start(t, tailnet())
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", f.Socket)
	}}}
	resp, err := hc.Get("http://example.com/localapi/v0/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Host example.com: %s", resp.Status)
	}
	if f.Requests() != 0 {
		t.Fatal("a request with the wrong Host reached the status handler")
	}
	if _, err := tailscale.New(f.Socket).Status(context.Background()); err != nil || f.Requests() != 1 {
		t.Fatalf("client: %v, %d requests", err, f.Requests())
	}
}
