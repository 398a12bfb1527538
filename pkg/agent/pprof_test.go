package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/constellation-sh/constellation/pkg/config"
)

// TestPprofNeedsTheToken: /debug/pprof is mounted, and only behind the API token.
func TestPprofNeedsTheToken(t *testing.T) {
	tf := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tf, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := startAgent(t, "n1", func(c *config.Config) { c.API.TokenFile = tf })
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.APIAddress()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, _ := get(p, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, code)
		}
		if code, _ := get(p, "wrong"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", p, code)
		}
	}
	if code, body := get("/debug/pprof/goroutine?debug=1", "s3cret"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("GET /debug/pprof/goroutine with the token: %d %q", code, body)
	}
	if code, body := get("/debug/pprof/", "s3cret"); code != http.StatusOK || !strings.Contains(body, "heap") {
		t.Fatalf("GET /debug/pprof/ with the token: %d %q", code, body)
	}
}
