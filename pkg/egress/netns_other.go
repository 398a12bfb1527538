//go:build !linux

package egress

import (
	"context"
	"errors"
	"net"
)

// NetnsDialer needs Linux network namespaces; elsewhere every dial fails.
func NetnsDialer(pid int) Dialer {
	return func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("egress: namespace probes need Linux")
	}
}
