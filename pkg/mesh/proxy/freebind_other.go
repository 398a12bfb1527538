//go:build !linux

package proxy

import "net"

// FreeBindListenConfig is the plain ListenConfig off Linux: listeners open only on addresses
// already on an interface.
func FreeBindListenConfig() *net.ListenConfig { return &net.ListenConfig{} }
