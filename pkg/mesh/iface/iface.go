// Package iface keeps the mesh's virtual IPs on the node's loopback interface, so that the
// kernel delivers a container's packets for a virtual IP to the agent's listeners (a container
// on any Docker bridge reaches the host's loopback addresses through its gateway, and the
// listener sees the container's own address). No overlay, no kernel module: an address on lo
// is plain netlink (RTM_NEWADDR / RTM_DELADDR, github.com/vishvananda/netlink).
//
// Sync owns the addresses of lo inside the mesh prefix and nothing else: it adds the wanted
// ones and removes the others of that prefix, so an agent restarted with fewer Services leaves
// nothing behind, and addresses outside the prefix (127.0.0.1, an operator's) are never touched.
package iface

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// Link is the interface the addresses live on. Netlink is the real one; tests use a fake.
type Link interface {
	// Addrs lists the interface's IPv4 addresses.
	Addrs() ([]netip.Addr, error)
	Add(a netip.Addr) error
	Del(a netip.Addr) error
}

// Loopback returns the host's "lo" through netlink.
func Loopback() (Link, error) {
	l, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("mesh: loopback interface: %w", err)
	}
	return nlLink{l}, nil
}

type nlLink struct{ l netlink.Link }

func (n nlLink) Addrs() ([]netip.Addr, error) {
	as, err := netlink.AddrList(n.l, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("mesh: list addresses of lo: %w", err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			out = append(out, ip)
		}
	}
	return out, nil
}

func hostNet(a netip.Addr) *net.IPNet {
	b := a.As4()
	return &net.IPNet{IP: net.IP(b[:]), Mask: net.CIDRMask(32, 32)}
}

func (n nlLink) Add(a netip.Addr) error {
	// Scope host: the address answers on this host only, and is never announced (ARP) on a
	// real interface.
	err := netlink.AddrAdd(n.l, &netlink.Addr{IPNet: hostNet(a), Scope: int(netlink.SCOPE_HOST)})
	if err != nil && !errors.Is(err, errExist) {
		return fmt.Errorf("mesh: add %s to lo: %w", a, err)
	}
	return nil
}

func (n nlLink) Del(a netip.Addr) error {
	if err := netlink.AddrDel(n.l, &netlink.Addr{IPNet: hostNet(a)}); err != nil {
		return fmt.Errorf("mesh: remove %s from lo: %w", a, err)
	}
	return nil
}

// Result says what a Sync changed.
type Result struct {
	Added, Removed []netip.Addr
}

// Sync makes the addresses of link inside prefix exactly want (addresses of want outside
// prefix are refused). It does as much as it can and returns every error joined.
func Sync(link Link, prefix netip.Prefix, want []netip.Addr) (Result, error) {
	var res Result
	for _, a := range want {
		if !prefix.Contains(a) {
			return res, fmt.Errorf("mesh: %s is outside the mesh prefix %s", a, prefix)
		}
	}
	have, err := link.Addrs()
	if err != nil {
		return res, err
	}
	wanted := map[netip.Addr]bool{}
	for _, a := range want {
		wanted[a] = true
	}
	present := map[netip.Addr]bool{}
	var errs []error
	for _, a := range have {
		present[a] = true
		if prefix.Contains(a) && !wanted[a] {
			if err := link.Del(a); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Removed = append(res.Removed, a)
		}
	}
	adds := make([]netip.Addr, 0, len(wanted))
	for a := range wanted {
		if !present[a] {
			adds = append(adds, a)
		}
	}
	slices.SortFunc(adds, func(x, y netip.Addr) int { return x.Compare(y) })
	for _, a := range adds {
		if err := link.Add(a); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Added = append(res.Added, a)
	}
	slices.SortFunc(res.Removed, func(x, y netip.Addr) int { return x.Compare(y) })
	return res, errors.Join(errs...)
}
