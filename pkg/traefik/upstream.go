package traefik

import (
	"net"
	"net/netip"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// meshAddresses is the server of an HTTP route of an upstream Service (docs/proxy.md): the
// Service's virtual IP at the route's port, which every node's mesh serves on its loopback, so
// the local Traefik reaches the local agent's failover proxy and the same breakers, replay
// rules and X-Constellation-Upstream apply to Traefik's traffic as to mesh clients'. None until
// the mesh controller has allocated the address (Traefik answers 503).
func meshAddresses(s *v1.Service, port v1.ServicePort) []string {
	a, err := netip.ParseAddr(s.Status.VirtualIP)
	if err != nil {
		return nil
	}
	return []string{net.JoinHostPort(a.String(), strconv.Itoa(int(port.ContainerPort)))}
}
