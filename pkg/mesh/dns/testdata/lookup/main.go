// Command lookup resolves each argument with Go's own resolver (which reads /etc/resolv.conf:
// nameservers, search, ndots) and prints "name addr,addr" or "name ERR reason", one a line,
// after the container's resolv.conf. Built statically into a FROM scratch image by the
// container test of pkg/mesh/dns.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	rc, _ := os.ReadFile("/etc/resolv.conf")
	for _, l := range strings.Split(strings.TrimSpace(string(rc)), "\n") {
		fmt.Println("# " + l)
	}
	r := &net.Resolver{PreferGo: true}
	for _, name := range os.Args[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		addrs, err := r.LookupHost(ctx, name)
		cancel()
		if err != nil {
			reason := "error"
			var de *net.DNSError
			if ok := asDNSError(err, &de); ok && de.IsNotFound {
				reason = "notfound"
			} else if ok && de.IsTimeout {
				reason = "timeout"
			}
			fmt.Printf("%s ERR %s\n", name, reason)
			continue
		}
		fmt.Printf("%s %s\n", name, strings.Join(addrs, ","))
	}
}

func asDNSError(err error, de **net.DNSError) bool {
	e, ok := err.(*net.DNSError)
	if ok {
		*de = e
	}
	return ok
}
