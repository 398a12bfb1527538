package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

// TestLBRecordFollowsTheLBLeaderAcrossWholeAgents runs three whole agents labelled role=lb, each
// on its own loopback address (127.0.0.2-4, so their advertise addresses differ), on the raft
// store, pointed at the fake Cloudflare. A DNSRecord following the Lease "lb" must name the
// holder's address; when the holder stops, the record must move to the new holder. It reports
// the time and the Cloudflare API calls the move took.
func TestLBRecordFollowsTheLBLeaderAcrossWholeAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents with raft stores; run without -short")
	}
	const zone, cfToken = "example.com", "cf-test-token"
	cf := cloudflare.New(cloudflare.WithToken(cfToken, zone))
	cf.AddZone(zone)
	apiURL, stopCF := cf.Start()
	defer stopCF()

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	cfTokenFile := filepath.Join(dir, "cloudflare-token")
	for f, v := range map[string]string{tokenFile: "cluster-secret", cfTokenFile: cfToken} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	agents := map[string]*Agent{}
	stops := map[string]func(){}
	var first string
	for i, name := range []string{"n1", "n2", "n3"} {
		ip := "127.0.0." + string(rune('2'+i))
		stop, a := startAgentStoppable(t, name, func(c *config.Config) {
			c.Store.Memory = false
			c.API.Address, c.Raft.Address, c.Gossip.Address = ip+":0", ip+":0", ip+":0"
			c.API.TokenFile = tokenFile
			c.Node.Labels = map[string]string{"role": "lb"}
			c.DNS.Cloudflare.TokenFile = cfTokenFile
			c.DNS.Cloudflare.APIURL = apiURL
			if first != "" {
				c.Join = []string{first}
			}
		})
		if first == "" {
			first = a.APIAddress()
		}
		agents[name], stops[name] = a, stop
	}
	// Joined nodes start as learners: stopping the holder before they are voters would leave no
	// quorum (a one-voter cluster), which is not what this test is about.
	eventuallyWithin(t, 60*time.Second, "three voters", func() bool {
		voters := 0
		for _, m := range agents["n1"].raft.Members() {
			if m.Role == v1.RaftLeader || m.Role == v1.RaftFollower {
				voters++
			}
		}
		return voters == 3
	})
	st := agents["n1"].Store()
	ctx := context.Background()
	rec := &v1.DNSRecord{Spec: v1.DNSRecordSpec{Zone: zone, Name: "lb." + zone, Type: v1.RecordA, Target: &v1.DNSTarget{Lease: v1.LeaseLB}}}
	rec.Metadata.Name = "lb"
	rec.Default()
	eventually(t, "the DNSRecord stored", func() bool {
		_, err := st.Create(ctx, rec)
		return err == nil
	})

	holderAndRecord := func(s *Agent) (holder, content string) {
		if o, err := s.Store().Get(ctx, v1.KindLease, v1.LeaseLB); err == nil {
			holder = o.(*v1.Lease).Spec.HolderIdentity
		}
		for _, r := range cf.Records(zone) {
			if r.Name == "lb."+zone && r.Type == "A" {
				if content != "" {
					return holder, "several records"
				}
				content = r.Content
			}
		}
		return holder, content
	}
	var holder string
	eventuallyWithin(t, 60*time.Second, "lb.example.com on the lb holder", func() bool {
		h, content := holderAndRecord(agents["n1"])
		holder = h
		return h != "" && content == agents[h].cfg.Node.AdvertiseAddress
	})

	var survivor *Agent
	for name, a := range agents {
		if name != holder {
			survivor = a
			break
		}
	}
	cf.ResetCalls()
	start := time.Now()
	stops[holder]()
	var next string
	// A killed holder's lease must expire (6 s) and, when it also held the controller lease, the
	// DNS controller must move too; under a loaded `go test ./...` that can take a while.
	eventuallyWithin(t, 60*time.Second, "lb.example.com on the new holder", func() bool {
		h, content := holderAndRecord(survivor)
		next = h
		return h != "" && h != holder && content == agents[h].cfg.Node.AdvertiseAddress
	})
	t.Logf("lb record moved from %s to %s in %s with %d Cloudflare API calls (%d writes)",
		holder, next, time.Since(start).Round(time.Millisecond), len(cf.Calls()), cf.Writes())
}
