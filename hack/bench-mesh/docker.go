// The Docker target: the HTTP echo test image in a container, reached directly, through the mesh
// and through Docker's published port.

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
)

type dockerTarget struct {
	name, containerAddr, publishedAddr, proxyNote string
	vip                                           proxy.Key
	once                                          sync.Once
}

func startDocker(image string) (*dockerTarget, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, errors.New("no docker command")
	}
	if out, err := exec.Command("docker", "version", "-f", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("no Docker engine answers: %s", firstLine(out))
	}
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		return nil, fmt.Errorf("image %s absent (build it with hack/build-test-images.sh)", image)
	}
	out, err := exec.Command("docker", "run", "-d", "--rm", "--label", "constellation.bench=mesh", "-p", "127.0.0.1::8080", image).Output()
	if err != nil {
		return nil, fmt.Errorf("docker run %s: %v", image, err)
	}
	d := &dockerTarget{name: strings.TrimSpace(string(out))}
	ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", d.name).Output()
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("docker inspect: %v", err)
	}
	d.containerAddr = net.JoinHostPort(strings.TrimSpace(string(ip)), "8080")
	pub, err := exec.Command("docker", "port", d.name, "8080/tcp").Output()
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("docker port: %v", err)
	}
	d.publishedAddr = firstLine(pub)
	for _, a := range []string{d.containerAddr, d.publishedAddr} {
		if err := waitHTTP(a); err != nil {
			d.stop()
			return nil, err
		}
	}
	// docker-proxy carries loopback traffic to a published port (iptables' DNAT skips 127/8);
	// say whether one runs for this port rather than assume it.
	_, port, _ := net.SplitHostPort(d.publishedAddr)
	d.proxyNote = "no docker-proxy process seen for it: the engine may run without the userland proxy"
	if ps, err := exec.Command("pgrep", "-a", "docker-proxy").Output(); err == nil {
		for _, l := range strings.Split(string(ps), "\n") {
			if strings.Contains(l, "-host-port "+port) {
				d.proxyNote = "served by docker-proxy"
			}
		}
	}
	return d, nil
}

func waitHTTP(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			err = httpReq(c, bufio.NewReader(c))
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("echo container at %s never answered: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *dockerTarget) stop() {
	d.once.Do(func() { exec.Command("docker", "rm", "-f", d.name).Run() })
}
