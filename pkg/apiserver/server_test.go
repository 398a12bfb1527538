package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/prometheus/client_golang/prometheus"
)

const token = "t0ken"

func newServer(t *testing.T, mut func(*Config)) (*httptest.Server, store.Store) {
	t.Helper()
	st := store.NewMemory()
	reg := prometheus.NewRegistry()
	cfg := Config{Store: st, Token: token, Gatherer: reg, Registerer: reg, MaxBodyBytes: 64 << 10, Logger: slog.New(slog.DiscardHandler)}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, st
}

func do(t *testing.T, ts *httptest.Server, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

const web = `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"}},
 "spec":{"image":"registry.local/web:1","ports":[{"containerPort":8080}],"routes":{"http":[{"host":"web.example.com"}]}}}`

func TestPutGetListDelete(t *testing.T) {
	ts, _ := newServer(t, nil)
	code, out := do(t, ts, "PUT", "/apis/v1/services/web", web)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	md := out["metadata"].(map[string]any)
	if md["resourceVersion"] != "1" || md["generation"].(float64) != 1 {
		t.Fatalf("metadata %v", md)
	}
	if code, _ := do(t, ts, "PUT", "/apis/v1/services/web", web); code != http.StatusOK {
		t.Fatalf("idempotent re-apply: %d", code)
	}
	code, out = do(t, ts, "GET", "/apis/v1/services/web", "")
	if code != 200 || out["spec"].(map[string]any)["image"] != "registry.local/web:1" {
		t.Fatalf("get: %d %v", code, out)
	}
	code, out = do(t, ts, "GET", "/apis/v1/services?labelSelector=app%3Dweb", "")
	if code != 200 || out["kind"] != "ServiceList" || len(out["items"].([]any)) != 1 || out["metadata"].(map[string]any)["resourceVersion"] != "1" {
		t.Fatalf("list: %d %v", code, out)
	}
	code, out = do(t, ts, "GET", "/apis/v1/services?labelSelector=app%3Ddb", "")
	if code != 200 || len(out["items"].([]any)) != 0 {
		t.Fatalf("filtered list: %d %v", code, out)
	}
	if code, _ := do(t, ts, "DELETE", "/apis/v1/services/web", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := do(t, ts, "GET", "/apis/v1/services/web", ""); code != 404 {
		t.Fatalf("get after delete: %d", code)
	}
}

// TestBadInputChangesNothing sends every kind of bad request and checks the error code, the field
// and that the store's revision did not move.
func TestBadInputChangesNothing(t *testing.T) {
	ts, st := newServer(t, nil)
	if code, _ := do(t, ts, "PUT", "/apis/v1/services/web", web); code != 201 {
		t.Fatal("setup")
	}
	stale := strings.Replace(web, `"name":"web",`, `"name":"web","resourceVersion":"0",`, 1)
	stale = strings.Replace(stale, "web:1", "web:2", 1)
	cases := []struct {
		name, method, path, body string
		code                     int
		field                    string
		noAuth                   bool
		auth                     string
	}{
		{name: "malformed JSON", method: "PUT", path: "/apis/v1/services/web", body: `{"kind":`, code: 400},
		{name: "unknown kind in URL", method: "PUT", path: "/apis/v1/pods/web", body: web, code: 404},
		{name: "unknown kind in body", method: "PUT", path: "/apis/v1/services/web", body: `{"apiVersion":"constellation/v1","kind":"Pod","metadata":{"name":"web"}}`, code: 400, field: "kind"},
		{name: "kind mismatch", method: "PUT", path: "/apis/v1/nodes/web", body: web, code: 400, field: "kind"},
		{name: "name mismatch", method: "PUT", path: "/apis/v1/services/other", body: web, code: 400, field: "metadata.name"},
		{name: "unknown field", method: "PUT", path: "/apis/v1/services/web", body: strings.Replace(web, `"image"`, `"imagee"`, 1), code: 400, field: "imagee"},
		{name: "invalid port", method: "PUT", path: "/apis/v1/services/web", body: strings.Replace(web, "8080", "0", 1), code: 422, field: "spec.ports[0].containerPort"},
		{name: "oversize body", method: "PUT", path: "/apis/v1/services/web", body: `{"x":"` + strings.Repeat("a", 70<<10) + `"}`, code: 413},
		{name: "stale resourceVersion", method: "PUT", path: "/apis/v1/services/web", body: stale, code: 409},
		{name: "missing token", method: "PUT", path: "/apis/v1/services/web", body: web, code: 401, noAuth: true},
		{name: "wrong token", method: "GET", path: "/apis/v1/services", code: 401, auth: "Bearer nope"},
		{name: "bad selector", method: "GET", path: "/apis/v1/services?labelSelector=a%20b", code: 400, field: "labelSelector"},
		{name: "delete missing", method: "DELETE", path: "/apis/v1/services/nope", code: 404},
		{name: "status of missing", method: "PUT", path: "/apis/v1/services/nope/status", body: strings.Replace(web, `"name":"web"`, `"name":"nope"`, 1), code: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := st.Revision(context.Background())
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			switch {
			case tc.auth != "":
				req.Header.Set("Authorization", tc.auth)
			case !tc.noAuth:
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e apiError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tc.code || e.Error == "" || e.Field != tc.field {
				t.Fatalf("got %d %+v, want %d field %q", resp.StatusCode, e, tc.code, tc.field)
			}
			if after, _ := st.Revision(context.Background()); after != before {
				t.Fatalf("a refused request changed the store: revision %d → %d", before, after)
			}
		})
	}
}

func TestDryRunChangesNothingAndShowsResult(t *testing.T) {
	ts, st := newServer(t, nil)
	code, out := do(t, ts, "PUT", "/apis/v1/services/web?dryRun=true", web)
	if code != 201 || out["metadata"].(map[string]any)["generation"].(float64) != 1 {
		t.Fatalf("dry-run create: %d %v", code, out)
	}
	if rev, _ := st.Revision(context.Background()); rev != 0 {
		t.Fatalf("dry run wrote: revision %d", rev)
	}
	do(t, ts, "PUT", "/apis/v1/services/web", web)
	code, out = do(t, ts, "PUT", "/apis/v1/services/web?dryRun=true", strings.Replace(web, "web:1", "web:2", 1))
	if code != 200 || out["metadata"].(map[string]any)["generation"].(float64) != 2 {
		t.Fatalf("dry-run update: %d %v", code, out)
	}
	got, _ := st.Get(context.Background(), v1.KindService, "web")
	if got.(*v1.Service).Spec.Image != "registry.local/web:1" {
		t.Fatal("dry run changed the object")
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	ts, _ := newServer(t, nil)
	sec := `{"apiVersion":"constellation/v1","kind":"Secret","metadata":{"name":"db"},"spec":{"data":{"password":"hunter2"}}}`
	for _, req := range [][2]string{{"PUT", "/apis/v1/secrets/db"}, {"GET", "/apis/v1/secrets/db"}, {"GET", "/apis/v1/secrets"}} {
		r, _ := http.NewRequest(req[0], ts.URL+req[1], strings.NewReader(sec))
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), v1.Redacted) {
			t.Fatalf("%s %s leaked or dropped the secret: %s", req[0], req[1], b)
		}
	}
}

func TestWatchStreamsEvents(t *testing.T) {
	ts, _ := newServer(t, nil)
	do(t, ts, "PUT", "/apis/v1/services/web", web)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/apis/v1/services?watch=true", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, string) {
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		var ev struct {
			Type   string
			Object struct{ Metadata v1.ObjectMeta }
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad event %s: %v", sc.Bytes(), err)
		}
		return ev.Type, ev.Object.Metadata.ResourceVersion
	}
	if typ, rv := next(); typ != "ADDED" || rv != "1" {
		t.Fatalf("initial event %s %s", typ, rv)
	}
	do(t, ts, "PUT", "/apis/v1/services/web", strings.Replace(web, "web:1", "web:2", 1))
	if typ, rv := next(); typ != "MODIFIED" || rv != "2" {
		t.Fatalf("event %s %s", typ, rv)
	}
	do(t, ts, "DELETE", "/apis/v1/services/web", "")
	if typ, _ := next(); typ != "DELETED" {
		t.Fatalf("event %s", typ)
	}
}

func TestWatchTooOldIsGone(t *testing.T) {
	ts, st := newServer(t, nil)
	do(t, ts, "PUT", "/apis/v1/services/web", web)
	do(t, ts, "PUT", "/apis/v1/services/web", strings.Replace(web, "web:1", "web:2", 1))
	_ = st.Compact(context.Background(), 2)
	code, out := do(t, ts, "GET", "/apis/v1/services?watch=true&resourceVersion=1", "")
	if code != http.StatusGone || !strings.Contains(out["error"].(string), "compacted") {
		t.Fatalf("got %d %v", code, out)
	}
}

func TestHealthReadyMetricsAndExtraHandlers(t *testing.T) {
	ready := error(nil)
	ts, _ := newServer(t, func(c *Config) {
		c.Ready = func(context.Context) error { return ready }
		c.Handlers = map[string]http.Handler{
			"GET /api/providers/traefik": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }),
		}
		c.Public = []string{"GET /api/providers/traefik"}
	})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/providers/traefik": 200} {
		resp, err := http.Get(ts.URL + path) // no token: these are public
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	ready = store.ErrUnavailable
	if resp, _ := http.Get(ts.URL + "/readyz"); resp.StatusCode != 503 {
		t.Errorf("readyz when not ready: %d", resp.StatusCode)
	}
	if resp, _ := http.Get(ts.URL + "/metrics"); resp.StatusCode != 401 {
		t.Errorf("metrics without token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "constellation_api_requests_total") {
		t.Fatalf("metrics lack API counters:\n%s", b)
	}
}
