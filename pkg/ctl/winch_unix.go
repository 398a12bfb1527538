//go:build unix

package ctl

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// watchResize sends the terminal's size on every SIGWINCH until stop is called.
func watchResize(fd int, out chan<- [2]uint16) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				if w, h, err := term.GetSize(fd); err == nil {
					select {
					case out <- [2]uint16{uint16(h), uint16(w)}:
					default:
					}
				}
			}
		}
	}()
	return func() { signal.Stop(sig); close(done) }
}
