package harness

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

var hc = &http.Client{Timeout: 2 * time.Second}

// TraefikServers reads the node's running Traefik's live configuration (its own API, not the
// agent's rendering) and returns, per HTTP service, the server URLs it load-balances to.
func (n *Node) TraefikServers(ctx context.Context) (map[string][]string, error) {
	var svcs []struct {
		Name         string `json:"name"`
		Provider     string `json:"provider"`
		LoadBalancer *struct {
			Servers []struct {
				URL string `json:"url"`
			} `json:"servers"`
		} `json:"loadBalancer"`
	}
	if err := getJSON(ctx, hc, n.TraefikAPIURL()+"/api/http/services?per_page=1000", &svcs); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, s := range svcs {
		if s.Provider != "http" || s.LoadBalancer == nil {
			continue
		}
		for _, srv := range s.LoadBalancer.Servers {
			out[s.Name] = append(out[s.Name], srv.URL)
		}
		sort.Strings(out[s.Name])
	}
	return out, nil
}

// ServersOn returns the server URLs in servers that point at ip.
func ServersOn(servers map[string][]string, ip string) []string {
	var out []string
	for _, urls := range servers {
		for _, u := range urls {
			if p, err := url.Parse(u); err == nil && p.Hostname() == ip {
				out = append(out, u)
			}
		}
	}
	return out
}

// Service reads a Service through the node's API.
func (n *Node) Service(ctx context.Context, name string) (*v1.Service, error) {
	obj, err := n.Client().Get(ctx, v1.KindService, name)
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*v1.Service)
	if !ok {
		return nil, fmt.Errorf("services/%s: got %T", name, obj)
	}
	return s, nil
}

// ServiceReady says why s is not Ready for its current generation with all desired replicas
// ready, or returns nil.
func ServiceReady(s *v1.Service) error {
	want := s.DesiredReplicas()
	c := v1.FindCondition(s.Status.Conditions, v1.ServiceReady)
	switch {
	case s.Status.ObservedGeneration < s.Metadata.Generation:
		return fmt.Errorf("services/%s: observedGeneration %d < generation %d", s.Metadata.Name, s.Status.ObservedGeneration, s.Metadata.Generation)
	case c == nil || c.Status != v1.ConditionTrue:
		return fmt.Errorf("services/%s: Ready condition %s", s.Metadata.Name, condString(c))
	case s.Status.ReadyReplicas != want:
		return fmt.Errorf("services/%s: readyReplicas %d of %d", s.Metadata.Name, s.Status.ReadyReplicas, want)
	}
	return nil
}

func condString(c *v1.Condition) string {
	if c == nil {
		return "absent"
	}
	return fmt.Sprintf("%s (%s: %s)", c.Status, c.Reason, c.Message)
}

// WaitServiceReady polls any reachable node in nodes until the Service is Ready and check (if
// not nil) accepts it. It returns the last Service read.
func WaitServiceReady(ctx context.Context, nodes []*Node, name string, max time.Duration, check func(*v1.Service) error) (*v1.Service, error) {
	var last *v1.Service
	err := poll(ctx, max, 200*time.Millisecond, func() error {
		var errs []string
		for _, n := range nodes {
			s, err := n.Service(ctx, name)
			if err != nil {
				errs = append(errs, n.Name+": "+err.Error())
				continue
			}
			last = s
			if err := ServiceReady(s); err != nil {
				return err
			}
			if check != nil {
				return check(s)
			}
			return nil
		}
		return fmt.Errorf("no node answered: %s", strings.Join(errs, "; "))
	}, func(err error) error { return fmt.Errorf("services/%s not ready after %s: %w", name, max, err) })
	return last, err
}

// Containers lists the containers the agent manages for service on the node's dockerd (running
// ones only unless all), as "name state" strings.
func (n *Node) Containers(ctx context.Context, service string, all bool) ([]string, error) {
	args := []string{"ps", "--filter", "label=constellation.service=" + service, "--format", "{{.Names}} {{.State}} {{.Label \"constellation.replica\"}}"}
	if all {
		args = append(args, "-a")
	}
	out, err := n.Docker(ctx, args...)
	if err != nil {
		return nil, err
	}
	var res []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			res = append(res, l)
		}
	}
	return res, nil
}

// Get sends one GET through the node's Traefik with the given Host header and path, and returns
// the status and body.
func (n *Node) Get(ctx context.Context, host, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.WebURL()+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil || b.Len() > 1<<16 {
			break
		}
	}
	return resp.StatusCode, b.String(), nil
}
