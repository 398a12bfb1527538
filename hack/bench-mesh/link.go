package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// link is a second network namespace joined to this one by a veth pair whose both ends are
// shaped by tc's token bucket to one rate: a stand-in for the network between two nodes, so bulk
// throughput through the mesh is measured where the link, not this machine's CPU, is the limit
// (as it is between nodes: the proxy runs on the client's node and forwards over the link once).
type link struct {
	ns             string
	host, peer     string // interface names
	hostIP, peerIP string
}

// newLink makes the namespace and the shaped veth pair; it needs root and iproute2.
func newLink(rate string) (*link, error) {
	id := os.Getpid() % 10000
	l := &link{
		ns: fmt.Sprintf("cst-bench-mesh-%d", id), host: fmt.Sprintf("cbm%dh", id), peer: fmt.Sprintf("cbm%dp", id),
		hostIP: "10.251.0.1", peerIP: "10.251.0.2",
	}
	steps := [][]string{
		{"ip", "netns", "add", l.ns},
		{"ip", "link", "add", l.host, "type", "veth", "peer", "name", l.peer},
		{"ip", "link", "set", l.peer, "netns", l.ns},
		{"ip", "addr", "add", l.hostIP + "/30", "dev", l.host},
		{"ip", "link", "set", l.host, "up"},
		{"ip", "-n", l.ns, "addr", "add", l.peerIP + "/30", "dev", l.peer},
		{"ip", "-n", l.ns, "link", "set", l.peer, "up"},
		{"ip", "-n", l.ns, "link", "set", "lo", "up"},
		// Both directions: upload leaves through the host end, download through the peer end.
		{"tc", "qdisc", "add", "dev", l.host, "root", "tbf", "rate", rate, "burst", "512kb", "latency", "20ms"},
		{"ip", "netns", "exec", l.ns, "tc", "qdisc", "add", "dev", l.peer, "root", "tbf", "rate", rate, "burst", "512kb", "latency", "20ms"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			l.remove()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return l, nil
}

// listen opens a TCP listener inside the peer namespace. A socket stays in the namespace it was
// made in, so only its creation needs the thread switched.
func (l *link) listen() (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(l.ns)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", l.ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, fmt.Errorf("enter netns %s: %w", l.ns, err)
	}
	ln, lerr := net.Listen("tcp", l.peerIP+":0")
	if err := netns.Set(orig); err != nil {
		// This thread is in the wrong namespace: never hand it back to the scheduler.
		fatalf("leave netns %s: %v", l.ns, err)
	}
	return ln, lerr
}

func (l *link) remove() {
	exec.Command("ip", "link", "del", l.host).Run() // takes the peer end with it
	exec.Command("ip", "netns", "del", l.ns).Run()
}

// serveOn runs handle for every connection accepted on ln and returns its address.
func serveOn(ln net.Listener, handle func(net.Conn)) string {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}
