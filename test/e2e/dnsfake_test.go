package e2e

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/test/e2e/harness"
	"github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

// dnsWrite is one mutating Cloudflare API call and the node it came from.
type dnsWrite struct {
	at     time.Time
	from   string // node IP
	method string
	path   string
}

// dnsFake is the fake Cloudflare API served on the cluster network's gateway, recording which
// node sent each write, so a test can check that at most one node acts as DNS writer.
type dnsFake struct {
	srv *http.Server
	cf  *cloudflare.Server
	url string

	mu sync.Mutex
	// guarded by mu:
	writes []dnsWrite
	reads  int
}

const dnsZone = "e2e.test"

// withDNSFake returns a harness Setup that starts the fake on the gateway and configures every
// agent's DNS controller against it (node records in dnsZone). stop shuts it down.
func withDNSFake(f **dnsFake) func(c *harness.Cluster) ([]string, map[string]string, error) {
	return func(c *harness.Cluster) ([]string, map[string]string, error) {
		token := "e2e-cloudflare-token"
		cf := cloudflare.New(cloudflare.WithToken(token))
		cf.AddZone(dnsZone)
		ln, err := net.Listen("tcp", net.JoinHostPort(c.Gateway.String(), "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("fake cloudflare on the gateway: %w", err)
		}
		d := &dnsFake{cf: cf, url: "http://" + ln.Addr().String() + "/client/v4"}
		d.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			d.mu.Lock()
			if r.Method != http.MethodGet {
				d.writes = append(d.writes, dnsWrite{time.Now(), host, r.Method, r.URL.Path})
			} else {
				d.reads++
			}
			d.mu.Unlock()
			cf.ServeHTTP(w, r)
		})}
		go func() { _ = d.srv.Serve(ln) }()
		*f = d
		return []string{
			"--dns.cloudflare.tokenFile=/etc/constellation/cloudflare-token",
			"--dns.cloudflare.apiURL=" + d.url,
			"--dns.nodeRecords.zone=" + dnsZone,
		}, map[string]string{"cloudflare-token": token + "\n"}, nil
	}
}

func (d *dnsFake) Writes() []dnsWrite {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dnsWrite(nil), d.writes...)
}

// Reads counts the GET requests the fake answered.
func (d *dnsFake) Reads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

func (d *dnsFake) Close() {
	if d != nil {
		_ = d.srv.Close()
	}
}

// records lists the zone's records as "name content".
func (d *dnsFake) records() []string {
	var out []string
	for _, r := range d.cf.Records(dnsZone) {
		out = append(out, r.Name+" "+r.Content)
	}
	return out
}
