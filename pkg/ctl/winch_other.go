//go:build !unix

package ctl

// watchResize: no SIGWINCH here; the terminal keeps its first size.
func watchResize(int, chan<- [2]uint16) (stop func()) { return func() {} }
