package doctor

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Shorthands for the verdicts.
const (
	OK   = nodeapi.StatusOK
	Warn = nodeapi.StatusWarn
	Fail = nodeapi.StatusFail
)

func check(name string, st nodeapi.CheckStatus, msg, hint string) nodeapi.Check {
	if st == OK {
		hint = ""
	}
	return nodeapi.Check{Name: name, Status: st, Message: msg, Hint: hint}
}

// Docker judges the engine: disabled (--docker.disabled: OK, the node runs no replicas), an
// error from its ping (FAIL), else the negotiated API version (WARN below 1.41, the oldest the
// agent is tested against).
func Docker(disabled bool, host, version string, err error) nodeapi.Check {
	const name = "docker"
	switch {
	case disabled:
		return check(name, OK, "disabled (--docker.disabled): this node runs no replicas", "")
	case err != nil:
		where := host
		if where == "" {
			where = "DOCKER_HOST or the local socket"
		}
		return check(name, Fail, fmt.Sprintf("engine at %s does not answer: %v", where, err),
			"start dockerd (systemctl start docker) or fix --docker.host; the agent's user must be able to open the socket")
	case version == "":
		return check(name, Warn, "engine answers but reported no API version", "check the engine's version (docker version)")
	case versionLess(version, "1.41"):
		return check(name, Warn, fmt.Sprintf("engine answers, API %s (older than 1.41)", version), "upgrade Docker: the agent is tested against API 1.41 and later")
	}
	return check(name, OK, fmt.Sprintf("engine answers, API %s", version), "")
}

// versionLess compares dotted API versions ("1.9" < "1.41").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			_, _ = fmt.Sscan(as[i], &x)
		}
		if i < len(bs) {
			_, _ = fmt.Sscan(bs[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Port is one of the agent's listening addresses and what dialling it gave.
type Port struct {
	Name    string // api, raft, gossip
	Address string // as configured or as bound
	Err     error  // dialling it; nil: something accepts there
}

// Ports judges each port: one check per port.
func Ports(ports []Port) []nodeapi.Check {
	out := make([]nodeapi.Check, 0, len(ports))
	for _, p := range ports {
		name := "port " + p.Name
		switch {
		case p.Address == "":
			out = append(out, check(name, Warn, "no address known", "the agent did not report where it listens; see its log"))
		case p.Err != nil:
			out = append(out, check(name, Fail, fmt.Sprintf("%s: nothing accepts connections: %v", p.Address, p.Err),
				fmt.Sprintf("the agent's %s listener is gone: restart the agent and look for \"address already in use\" in its log", p.Name)))
		default:
			out = append(out, check(name, OK, p.Address+" accepts connections", ""))
		}
	}
	return out
}

// DiskUsage is what statfs says of a file system.
type DiskUsage struct {
	Total uint64 // bytes
	Free  uint64 // bytes available to the agent's user
}

// Disk thresholds: FAIL below 5% or 256 MiB free, WARN below 15% or 1 GiB.
const (
	DiskFailFraction = 0.05
	DiskFailBytes    = 256 << 20
	DiskWarnFraction = 0.15
	DiskWarnBytes    = 1 << 30
)

// Disk judges the free space of the file system holding the data dir (the raft log, bbolt and
// snapshots: a full disk stops the store).
func Disk(dir string, u DiskUsage, err error) nodeapi.Check {
	const name = "disk"
	if err != nil {
		return check(name, Fail, fmt.Sprintf("data dir %s: %v", dir, err), "check that --dataDir exists and the agent can read it")
	}
	if u.Total == 0 {
		return check(name, Warn, fmt.Sprintf("data dir %s: the file system reports no size", dir), "check the mount holding --dataDir")
	}
	frac := float64(u.Free) / float64(u.Total)
	msg := fmt.Sprintf("data dir %s: %s free of %s (%.0f%%)", dir, bytesText(u.Free), bytesText(u.Total), frac*100)
	hint := "free space on the file system holding --dataDir (old images: docker image prune; logs), or move the data dir"
	switch {
	case frac < DiskFailFraction || u.Free < DiskFailBytes:
		return check(name, Fail, msg, hint+": the store stops writing when the disk is full")
	case frac < DiskWarnFraction || u.Free < DiskWarnBytes:
		return check(name, Warn, msg, hint)
	}
	return check(name, OK, msg, "")
}

func bytesText(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// Cert is a certificate the node uses.
type Cert struct {
	Name      string // "node", "cluster CA"
	NotBefore time.Time
	NotAfter  time.Time
	// Renewed: the agent renews it by itself (the node certificate) once a third of its
	// lifetime is left; the CA is not renewed.
	Renewed bool
}

// Certificate thresholds: FAIL when expired or within CertFailWithin, WARN within CertWarnWithin
// (or a renewed certificate past its renewal point: renewal is failing).
const (
	CertFailWithin = 7 * 24 * time.Hour
	CertWarnWithin = 30 * 24 * time.Hour
)

// Certificates judges each certificate's expiry at now: one check per certificate.
func Certificates(now time.Time, certs []Cert) []nodeapi.Check {
	out := make([]nodeapi.Check, 0, len(certs))
	for _, c := range certs {
		name := "certificate " + c.Name
		left := c.NotAfter.Sub(now)
		hint := "the agent renews the node certificate itself: look for \"issued node certificate\" or renewal errors in its log, and restart it"
		if !c.Renewed {
			hint = "the cluster CA is not renewed automatically: plan a CA rotation before it expires (docs/security.md)"
		}
		until := fmt.Sprintf("expires %s (in %s)", c.NotAfter.UTC().Format(time.RFC3339), daysText(left))
		switch {
		case c.NotAfter.IsZero():
			out = append(out, check(name, Fail, "no certificate", hint))
		case left <= 0:
			out = append(out, check(name, Fail, fmt.Sprintf("expired %s (%s ago)", c.NotAfter.UTC().Format(time.RFC3339), daysText(-left)), hint))
		case now.Before(c.NotBefore):
			out = append(out, check(name, Fail, fmt.Sprintf("not valid before %s: this node's clock is behind", c.NotBefore.UTC().Format(time.RFC3339)), "fix the node's clock (timedatectl, chrony)"))
		case left < CertFailWithin:
			out = append(out, check(name, Fail, until, hint))
		case left < CertWarnWithin:
			out = append(out, check(name, Warn, until, hint))
		case c.Renewed && left < c.NotAfter.Sub(c.NotBefore)/3-time.Hour:
			out = append(out, check(name, Warn, until+", past its renewal point", hint))
		default:
			out = append(out, check(name, OK, until, ""))
		}
	}
	return out
}

func daysText(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

// Poll is one client that fetched the Traefik provider configuration from this agent.
type Poll struct {
	Client string // remote address (IP)
	Agent  string // User-Agent
	Last   time.Time
	Status int // HTTP status of the last answer
	Count  int64
}

// DefaultPollStale is how old the last poll may be before it is stale: Traefik's HTTP provider
// polls every 5s by default (providers.http.pollInterval), so a minute is twelve missed polls.
const DefaultPollStale = time.Minute

// TraefikPolls judges whether a Traefik polls this agent's provider endpoint. On a load
// balancer (node label role=lb) no poll, or only stale ones, is a FAIL or a WARN; elsewhere a
// node nobody polls is fine (it runs no Traefik), but a poller that stopped is a WARN.
func TraefikPolls(now time.Time, lb bool, stale time.Duration, polls []Poll) nodeapi.Check {
	const name = "traefik"
	if stale <= 0 {
		stale = DefaultPollStale
	}
	hint := "check the local Traefik runs and its providers.http.endpoint points at this agent's /api/providers/traefik with a provider token (docs/traefik.md)"
	if len(polls) == 0 {
		if lb {
			return check(name, Fail, "no Traefik has polled the provider since the agent started (node is role=lb)", hint)
		}
		return check(name, OK, "no Traefik polls this agent (not a load balancer: no role=lb label)", "")
	}
	latest := polls[0]
	for _, p := range polls[1:] {
		if p.Last.After(latest.Last) {
			latest = p
		}
	}
	age := now.Sub(latest.Last)
	who := latest.Client
	if latest.Agent != "" {
		who += " (" + latest.Agent + ")"
	}
	msg := fmt.Sprintf("last poll %s ago from %s, answered %d", age.Round(time.Second), who, latest.Status)
	switch {
	case age > stale:
		return check(name, Warn, msg+fmt.Sprintf(": stale (over %s)", stale), hint)
	case latest.Status >= 400:
		return check(name, Warn, msg, "the provider answered an error: check the provider token and the agent's log")
	}
	return check(name, OK, msg, "")
}

// Zone is the lookup of one DNS zone in Cloudflare.
type Zone struct {
	Name string
	Err  error
}

// ErrZoneNotFound marks a zone the token cannot see (Zone.Err wraps it, or any error whose text
// says so).
var ErrZoneNotFound = errors.New("zone not found")

// Cloudflare judges the DNS provider: not configured (OK), a token the API refuses (FAIL),
// zones not found (FAIL), none to look up (WARN).
func Cloudflare(configured bool, tokenErr error, zones []Zone) nodeapi.Check {
	const name = "cloudflare"
	if !configured {
		return check(name, OK, "not configured (no --dns.cloudflare.tokenFile)", "")
	}
	if tokenErr != nil {
		return check(name, Fail, fmt.Sprintf("token refused: %v", tokenErr),
			"check --dns.cloudflare.tokenFile holds a valid API token with Zone:Read and DNS:Edit on the zones, and --dns.cloudflare.apiURL")
	}
	if len(zones) == 0 {
		return check(name, Warn, "token valid; no zone to look up (no DNSRecord, no --dns.nodeRecords.zone)", "apply a DNSRecord or set --dns.nodeRecords.zone")
	}
	var found, missing []string
	for _, z := range zones {
		if z.Err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", z.Name, z.Err))
		} else {
			found = append(found, z.Name)
		}
	}
	sort.Strings(found)
	if len(missing) > 0 {
		sort.Strings(missing)
		return check(name, Fail, fmt.Sprintf("token valid; zones not found: %s", strings.Join(missing, ", ")),
			"the token cannot see these zones: add them to the token's zone resources in the Cloudflare dashboard, or fix the DNSRecords' spec.zone")
	}
	return check(name, OK, fmt.Sprintf("token valid; zones found: %s", strings.Join(found, ", ")), "")
}

// MeshDNS judges the mesh name server: disabled (OK), no answer (FAIL).
func MeshDNS(disabled bool, addr, query string, err error) nodeapi.Check {
	const name = "mesh dns"
	switch {
	case disabled:
		return check(name, OK, "mesh disabled (--mesh.disabled)", "")
	case err != nil:
		return check(name, Fail, fmt.Sprintf("%s does not answer %s: %v", addr, query, err),
			"the mesh name server is down: containers cannot resolve Services; check the agent's log for \"mesh\" errors and that lo holds the mesh address")
	}
	return check(name, OK, fmt.Sprintf("%s answers %s", addr, query), "")
}

// Raft judges the node's own view of raft: it must know a leader and be a member.
func Raft(node string, r *nodeapi.RaftInfo) nodeapi.Check {
	const name = "raft"
	if r == nil {
		return check(name, Warn, "in-memory store (--store.memory): nothing is persisted, no quorum", "run without --store.memory for a real cluster")
	}
	switch {
	case r.Role == "" || strings.EqualFold(r.Role, "none"):
		return check(name, Fail, "this node is not a raft member", "join it again (constellation-agent --join) or remove it (ctl node remove)")
	case r.Leader == "":
		return check(name, Fail, fmt.Sprintf("%s knows no leader: no quorum from here", r.Role),
			"a majority of voters must reach each other on their raft ports; see ctl doctor's quorum line and the nodes that do not answer")
	}
	return check(name, OK, fmt.Sprintf("%s, leader %s", r.Role, r.Leader), "")
}

// Gossip judges the node's own gossip view against the nodes of the cluster: every known node
// should be seen alive.
func Gossip(g nodeapi.GossipInfo, nodes []string) nodeapi.Check {
	const name = "gossip"
	alive := map[string]bool{}
	for _, n := range g.Alive {
		alive[n] = true
	}
	var missing []string
	for _, n := range nodes {
		if !alive[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	key := "unencrypted"
	if g.PrimaryKey != "" {
		key = "key " + g.PrimaryKey
	}
	msg := fmt.Sprintf("%d alive (%s), %d keys", len(g.Alive), key, g.Keys)
	if len(missing) > 0 {
		return check(name, Warn, msg+"; does not see "+strings.Join(missing, ", "),
			"those nodes are down or cannot reach this one on the gossip port (TCP and UDP); a node with another gossip key cannot join (ctl doctor's gossip key line)")
	}
	return check(name, OK, msg, "")
}
