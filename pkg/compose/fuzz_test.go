package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzConvert: arbitrary YAML never panics the loader, the mapping or the renderer, and what
// converts renders to Go that parses (Render checks it with go/parser).
func FuzzConvert(f *testing.F) {
	for _, s := range []string{
		"services:\n  web:\n    image: nginx\n",
		"services:\n  a:\n    image: x\n    ports: ['80:80', '53:53/udp']\n    depends_on: {b: {condition: service_healthy}}\n  b:\n    image: y\n    healthcheck: {test: [CMD, true]}\n",
		"services:\n  a:\n    image: x\n    network_mode: service:b\n  b:\n    image: y\n    labels: {traefik.http.routers.r.rule: 'Host(`a.b`) && PathPrefix(`/x`)'}\n",
		"services:\n  a:\n    image: x\n    deploy: {mode: global, resources: {limits: {cpus: '0.5', memory: 1G}}}\n    ulimits: {nofile: {soft: 1, hard: 2}}\n    tmpfs: ['/t:size=1m']\n",
		"x-a: &a {image: x}\nservices:\n  a: {<<: *a, environment: [PASSWORD=p, A=b]}\n",
		"services:\n  a:\n    image: x\n    read_only: true\n    volumes: ['./compose.yaml:/c.yaml:ro', 'd:/etc']\n    configs: [{source: c, target: /etc/c, mode: 0640}]\n    secrets: [s]\nconfigs:\n  c: {content: \"`x`\\r\\n\"}\nsecrets:\n  s: {environment: S}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, yaml string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		type res struct {
			r   *Result
			err error
		}
		ch := make(chan res, 1)
		go func() {
			r, err := Convert(context.Background(), []string{p}, Options{ProjectName: "fuzz"})
			ch <- res{r, err}
		}()
		var got res
		select {
		case got = <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("HANG on %q", yaml)
		}
		r, err := got.r, got.err
		if err != nil {
			return
		}
		if _, err := Render(r); err != nil {
			t.Fatalf("converted but did not render: %v", err)
		}
	})
}
