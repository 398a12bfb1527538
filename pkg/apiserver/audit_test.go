package apiserver

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/constellation-sh/constellation/pkg/auth"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Every write and every refusal is an audit line naming the token (never its secret); reads
// are not, and a Secret's values never reach the log.
func TestAuditLog(t *testing.T) {
	var logs lockedBuffer
	set := auth.NewSet([]auth.Token{{Name: "ops", Scope: auth.ScopeAdmin, Secret: "admin-secret-1"}, {Name: "grafana", Scope: auth.ScopeRead, Secret: "read-secret-1"}})
	ts, _ := newServer(t, func(c *Config) {
		c.Token, c.Tokens = "", func() *auth.Set { return set }
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	sec := `{"apiVersion":"constellation/v1","kind":"Secret","metadata":{"name":"db"},"spec":{"data":{"pw":"hunter2-value"}}}`
	send := func(method, path, body, tok string) int {
		t.Helper()
		code, _ := doAs(t, ts, method, path, body, tok)
		return code
	}
	if c := send("PUT", "/apis/v1/secrets/db", sec, "read-secret-1"); c != 403 {
		t.Fatalf("read token PUT: %d", c)
	}
	if c := send("PUT", "/apis/v1/secrets/db", sec, "admin-secret-1"); c != 201 {
		t.Fatalf("admin PUT: %d", c)
	}
	if c := send("GET", "/apis/v1/secrets/db", "", "read-secret-1"); c != 200 {
		t.Fatalf("read GET: %d", c)
	}
	if c := send("DELETE", "/apis/v1/secrets/db", "", "nope"); c != 401 {
		t.Fatalf("bad token DELETE: %d", c)
	}
	out := logs.String()
	var audit []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "audit=true") {
			audit = append(audit, l)
		}
	}
	want := []string{
		"who=grafana scope=read method=PUT path=/apis/v1/secrets/db code=403",
		"who=ops scope=admin method=PUT path=/apis/v1/secrets/db code=201",
		`who=(unauthenticated) scope="" method=DELETE path=/apis/v1/secrets/db code=401`,
	}
	if len(audit) != len(want) {
		t.Fatalf("audit lines:\n%s\nwant %d", strings.Join(audit, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.Contains(audit[i], w) {
			t.Errorf("audit line %d: %s\nwant it to hold %s", i, audit[i], w)
		}
	}
	for _, secret := range []string{"admin-secret-1", "read-secret-1", "hunter2-value"} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, out)
		}
	}
}

// doAs is do with another bearer token.
func doAs(t *testing.T, ts *httptest.Server, method, path, body, tok string) (int, map[string]any) {
	t.Helper()
	return do(t, ts, method, path, body, "Authorization", "Bearer "+tok)
}
