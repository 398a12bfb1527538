package proxy

import (
	"net"
	"syscall"
)

// FreeBindListenConfig returns a ListenConfig whose sockets set IP_FREEBIND: a listener may
// open on a virtual IP before that address is on an interface (and keeps working once it is),
// so the agent need not order "add the address" before "Sync". Use it as Config.ListenConfig.
func FreeBindListenConfig() *net.ListenConfig {
	return &net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
}
