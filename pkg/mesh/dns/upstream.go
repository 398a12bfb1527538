package dns

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// upstreams is the list of resolvers to forward to: fixed, or read from a resolv.conf and re-read
// when the file changes (a laptop's DHCP, NetworkManager or systemd-resolved rewrite it).
type upstreams struct {
	path  string
	fixed []string
	log   *slog.Logger

	mu sync.Mutex
	// guarded by mu:
	list    []string // "ip:port"
	modTime time.Time
	size    int64
	loaded  bool
	lastErr string
}

func newUpstreams(cfg Config, log *slog.Logger) *upstreams {
	u := &upstreams{path: cfg.ResolvConf, log: log}
	for _, s := range cfg.Upstreams {
		a, _ := upstreamAddr(s) // validated
		u.fixed = append(u.fixed, a)
	}
	return u
}

// get returns the current upstreams. A resolv.conf that cannot be read keeps the last good list
// (logged once per distinct error).
func (u *upstreams) get() []string {
	if len(u.fixed) > 0 {
		return u.fixed
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	fi, err := os.Stat(u.path)
	if err != nil {
		u.noteErrorLocked(err)
		return u.list
	}
	if u.loaded && fi.ModTime().Equal(u.modTime) && fi.Size() == u.size {
		return u.list
	}
	list, err := readResolvConf(u.path)
	if err != nil {
		u.noteErrorLocked(err)
		return u.list
	}
	u.list, u.modTime, u.size, u.loaded, u.lastErr = list, fi.ModTime(), fi.Size(), true, ""
	if u.log != nil {
		u.log.Info("mesh dns: upstream resolvers", "resolvConf", u.path, "upstreams", list)
	}
	return u.list
}

func (u *upstreams) noteErrorLocked(err error) {
	if msg := err.Error(); msg != u.lastErr {
		u.lastErr = msg
		if u.log != nil {
			u.log.Warn("mesh dns: read upstream resolvers; keeping the last good list", "resolvConf", u.path, "err", err, "upstreams", u.list)
		}
	}
}

func readResolvConf(path string) ([]string, error) {
	cc, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read resolv.conf %s: %w", path, err)
	}
	var list []string
	for _, s := range cc.Servers {
		a, err := upstreamAddr(s)
		if err != nil {
			continue // not an IP literal: resolv.conf allows only addresses; ignore junk
		}
		list = append(list, a)
	}
	return list, nil
}
