// Bulk throughput: one connection moving N bytes each way, with the CPU spent per GB, direct and
// through the mesh (bulkTable), also over a shaped link between namespaces (linkBulk).

package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
)

// bulkTable prints the median throughput both ways, direct and through the mesh, and the ratio.
func bulkTable(direct, mesh string, n int64, runs int) {
	fmt.Printf("%-10s %12s %12s %7s %18s %16s\n", "direction", "direct MB/s", "mesh MB/s", "ratio", "CPU s/GB direct", "CPU s/GB mesh")
	for _, dir := range []string{"upload", "download"} {
		var d, m, dc, mc []float64
		for range runs { // alternate, so drift in the machine's load hits both
			t, c := throughput(direct, dir, n)
			d, dc = append(d, t), append(dc, c)
			t, c = throughput(mesh, dir, n)
			m, mc = append(m, t), append(mc, c)
		}
		dm, mm := median(d), median(m)
		fmt.Printf("%-10s %12.0f %12.0f %6.2fx %18.2f %16.2f\n", dir, dm, mm, mm/dm, median(dc), median(mc))
	}
}

// linkBulk measures bulk throughput to a server in a second network namespace behind a veth
// link shaped to rate, straight over the link and through the mesh (the proxy on this side, as
// on a client's node, forwarding over the link once). Skipped with a message when the namespace
// cannot be made (not root, no iproute2).
func linkBulk(p syncer, table proxy.Table, rate string, n int64, runs int) {
	l, err := newLink(rate)
	if err != nil {
		fmt.Printf("\nbetween-nodes bulk test at %s skipped: %v\n", rate, err)
		return
	}
	onExit(l.remove)
	defer l.remove()
	ln, err := l.listen()
	if err != nil {
		fatalf("listen in %s: %v", l.ns, err)
	}
	defer ln.Close()
	server := serveOn(ln, bulkConn)
	key := proxy.Key{Protocol: proxy.TCP, VIP: vip, Port: freePort()}
	if err := p.Sync(append(slices.Clone(table), proxy.Entry{Key: key, Service: "bulk-link", Endpoints: []proxy.Endpoint{{Node: "peer", Address: server, Healthy: true}}})); err != nil {
		fatalf("proxy sync: %v", err)
	}
	fmt.Printf("\nBulk throughput between nodes: a veth link to namespace %s shaped by tc tbf to %s each way, one connection, %d MiB each way, median of %d runs\n", l.ns, rate, n>>20, runs)
	bulkTable(server, netip.AddrPortFrom(key.VIP, key.Port).String(), n, runs)
}

// proxyCPU, when set, reads the CPU time of the proxy's own process (-pin).
var proxyCPU func() time.Duration

// cpuTime is the CPU time of the generator, the servers and the proxy so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if proxyCPU != nil {
		t += proxyCPU()
	}
	return t
}

// throughput returns MB/s and the CPU the generator, the server and the proxy spent per GB.
func throughput(addr, dir string, n int64) (float64, float64) {
	cpu0 := cpuTime()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fatalf("bulk dial %s: %v", addr, err)
	}
	defer c.Close()
	start := time.Now()
	var hdr [9]byte
	switch dir {
	case "upload":
		hdr[0] = 'u'
		c.Write(hdr[:1])
		if _, err := io.CopyBuffer(c, io.LimitReader(zeros{}, n), make([]byte, 256<<10)); err != nil {
			fatalf("bulk upload: %v", err)
		}
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.ReadFull(c, hdr[1:]); err != nil {
			fatalf("bulk upload answer: %v", err)
		}
		if got := int64(binary.BigEndian.Uint64(hdr[1:])); got != n {
			fatalf("bulk upload: server got %d bytes, sent %d", got, n)
		}
	case "download":
		hdr[0] = 'd'
		binary.BigEndian.PutUint64(hdr[1:], uint64(n))
		c.Write(hdr[:])
		got, err := discard(c)
		if err != nil || got != n {
			fatalf("bulk download: %d of %d bytes, %v", got, n, err)
		}
	}
	return float64(n) / 1e6 / time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds() / (float64(n) / 1e9)
}
