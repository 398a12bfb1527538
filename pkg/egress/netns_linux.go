package egress

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// NetnsDialer dials from the network namespace of process pid (a gateway container's init, from
// Docker's inspect), so the probe sees the network exactly as a container sharing that
// namespace does. The socket is created on an OS thread switched into the namespace with
// setns(2) and switched back before the thread is released (a thread that cannot switch back
// is discarded with its goroutine); a socket stays in the namespace it was created in. Needs
// CAP_SYS_ADMIN and the container's pid visible in /proc (the agent runs as root in the node's
// pid namespace). Host names are resolved first in the agent's own namespace: only the
// connection runs in the gateway's.
func NetnsDialer(pid int) Dialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(host) == nil {
			ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil {
				return nil, err
			}
			if len(ips) == 0 {
				return nil, fmt.Errorf("resolve %s: no address", host)
			}
			addr = net.JoinHostPort(ips[0].IP.String(), port)
		}
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			c, err, restored := dialIn(ctx, pid, network, addr)
			if restored {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// dialIn runs on a locked thread: it enters pid's network namespace, dials, and returns to the
// thread's own; restored is false when the thread could not return (it must then die).
func dialIn(ctx context.Context, pid int, network, addr string) (c net.Conn, err error, restored bool) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open own netns: %w", err), true
	}
	defer unix.Close(self)
	target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open netns of pid %d: %w", pid, err), true
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns into pid %d: %w", pid, err), true
	}
	c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
	return c, err, unix.Setns(self, unix.CLONE_NEWNET) == nil
}
