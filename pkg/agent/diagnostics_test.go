package agent

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

func checksByName(d *nodeapi.Diagnostics) map[string]nodeapi.Check {
	m := map[string]nodeapi.Check{}
	for _, c := range d.Checks {
		m[c.Name] = c
	}
	return m
}

// runCtlDoctor runs `ctl doctor` against the agent and returns its exit status and output.
func runCtlDoctor(t *testing.T, a *Agent) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := ctl.Run(ctx, []string{"doctor", "--server", a.APIURL(), "--token", "cluster-secret"},
		ctl.Env{Out: &out, Err: &errb, Getenv: func(string) string { return "" }})
	return code, out.String() + errb.String()
}

// TestDiagnosticsWholeAgent runs two whole agents on the raft store, labelled role=lb and
// pointed at the fake Cloudflare. The healthy one (real dockerd, a valid token, a zone it can
// see, polled by a "Traefik") reports every check OK and `ctl doctor` exits 0; the broken one
// (a Docker host nobody serves, a token Cloudflare refuses, never polled) reports each of those
// as FAIL, and `ctl doctor` exits 1 naming them.
func TestDiagnosticsWholeAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents and talks to dockerd; run without -short")
	}
	const zone, cfToken = "example.com", "cf-doctor-token"
	cf := cloudflare.New(cloudflare.WithToken(cfToken, zone))
	cf.AddZone(zone)
	apiURL, stopCF := cf.Start()
	defer stopCF()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "cf-good"), filepath.Join(dir, "cf-bad")
	for f, v := range map[string]string{good: cfToken, bad: "revoked-token"} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raft := raftAgents(t)
	setup := func(tokenFile string) func(*config.Config) {
		return func(c *config.Config) {
			raft("")(c)
			c.Node.Labels = map[string]string{"role": "lb"}
			c.DNS.Cloudflare.TokenFile = tokenFile
			c.DNS.Cloudflare.APIURL = apiURL
			c.DNS.NodeRecords.Zone = zone
		}
	}

	t.Run("healthy", func(t *testing.T) {
		_, a := startAgentStoppable(t, "doc-ok", func(c *config.Config) {
			setup(good)(c)
			c.Docker.Disabled = false
			c.Docker.Host = ""
		})
		cl, err := client.New(client.Config{Server: a.APIAddress(), Token: "cluster-secret"})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		// The local Traefik polls the provider.
		eventually(t, "a provider poll answered", func() bool {
			req, _ := http.NewRequest(http.MethodGet, a.APIURL()+"/api/providers/traefik", nil)
			req.Header.Set("Authorization", "Bearer cluster-secret")
			req.Header.Set("User-Agent", "Traefik/3.6")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		var d *nodeapi.Diagnostics
		eventually(t, "every check OK", func() bool {
			d, err = cl.Diagnostics(ctx, "doc-ok")
			if err != nil {
				return false
			}
			for _, c := range d.Checks {
				if c.Status != nodeapi.StatusOK {
					return false
				}
			}
			return true
		})
		got := checksByName(d)
		for _, name := range []string{"docker", "port api", "port raft", "port gossip", "disk", "raft", "gossip", "traefik", "cloudflare", "mesh dns", "certificate node", "certificate cluster CA"} {
			if _, ok := got[name]; !ok {
				t.Errorf("no %q check: %+v", name, d.Checks)
			}
		}
		if !strings.Contains(got["cloudflare"].Message, "zones found: example.com") || !strings.Contains(got["traefik"].Message, "Traefik/3.6") {
			t.Errorf("cloudflare %q, traefik %q", got["cloudflare"].Message, got["traefik"].Message)
		}
		if d.Raft == nil || d.Raft.Leader != "doc-ok" || d.Time.IsZero() || d.Gossip.PrimaryKey == "" {
			t.Errorf("diagnostics: %+v", d)
		}
		if code, out := runCtlDoctor(t, a); code != 0 || !strings.Contains(out, "0 FAIL") {
			t.Errorf("ctl doctor exit %d:\n%s", code, out)
		}
	})

	t.Run("broken", func(t *testing.T) {
		_, a := startAgentStoppable(t, "doc-bad", func(c *config.Config) {
			setup(bad)(c)
			c.Docker.Disabled = false
			c.Docker.Host = "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")
		})
		cl, err := client.New(client.Config{Server: a.APIAddress(), Token: "cluster-secret"})
		if err != nil {
			t.Fatal(err)
		}
		var d *nodeapi.Diagnostics
		eventually(t, "diagnostics with a leader", func() bool {
			d, err = cl.Diagnostics(context.Background(), "doc-bad")
			return err == nil && d.Raft != nil && d.Raft.Leader != ""
		})
		got := checksByName(d)
		for name, want := range map[string]string{
			"docker":     "does not answer",
			"cloudflare": "Invalid access token",
			"traefik":    "no Traefik has polled",
		} {
			if c := got[name]; c.Status != nodeapi.StatusFail || !strings.Contains(c.Message, want) || c.Hint == "" {
				t.Errorf("%s: %+v, want FAIL containing %q with a hint", name, c, want)
			}
		}
		code, out := runCtlDoctor(t, a)
		if code != 1 || !strings.Contains(out, "doc-bad docker") || !strings.Contains(out, "doc-bad cloudflare") || !strings.Contains(out, "doc-bad traefik") {
			t.Errorf("ctl doctor exit %d:\n%s", code, out)
		}
	})
}
