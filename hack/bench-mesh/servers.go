// The servers the bench measures against: a TCP echo server and a bulk (upload/download) server.

package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
)

func serve(handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("listen: %v", err)
	}
	return serveOn(ln, handle)
}

func echoConn(c net.Conn) { io.Copy(c, c) }

// bulkConn: 'u' then bytes until EOF, answered with the count (8 bytes); or 'd' and an 8-byte
// count, answered with that many bytes.
func bulkConn(c net.Conn) {
	var cmd [9]byte
	if _, err := io.ReadFull(c, cmd[:1]); err != nil {
		return
	}
	switch cmd[0] {
	case 'u':
		n, _ := discard(c)
		binary.BigEndian.PutUint64(cmd[1:], uint64(n))
		c.Write(cmd[1:])
	case 'd':
		if _, err := io.ReadFull(c, cmd[1:]); err != nil {
			return
		}
		io.CopyBuffer(c, io.LimitReader(zeros{}, int64(binary.BigEndian.Uint64(cmd[1:]))), make([]byte, 256<<10))
	}
}

// discard reads c to its end in large reads (io.Discard's ReadFrom reads 8 KiB at a time).
func discard(c net.Conn) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func freePort() uint16 {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(vip, 0).String())
	if err != nil {
		fatalf("free port on %s: %v", vip, err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}
