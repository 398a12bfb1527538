//go:build linux

package auth

import (
	"os"
	"syscall"
)

func stampOf(st os.FileInfo) fileStamp {
	s := fileStamp{mod: st.ModTime(), size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s
}
