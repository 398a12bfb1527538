package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

func newClient(t *testing.T, h http.Handler, token string) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{Server: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func svcJSON(name, rv string) string {
	return fmt.Sprintf(`{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":%q,"resourceVersion":%q,"generation":1},"spec":{"image":"nginx"},"status":{"replicas":0,"readyReplicas":0,"updatedReplicas":0}}`, name, rv)
}

func TestNewServerURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"", client.DefaultServer, false},
		{"127.0.0.1:9000", "http://127.0.0.1:9000", false},
		{"https://a.example:7480/", "https://a.example:7480", false},
		{"http://a/prefix/", "http://a/prefix", false},
		{"ftp://a", "", true},
		{"http://", "", true},
	} {
		c, err := client.New(client.Config{Server: tc.in})
		if tc.err {
			if err == nil {
				t.Errorf("New(%q): no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.in, err)
			continue
		}
		if c.Server() != tc.want {
			t.Errorf("New(%q).Server() = %q, want %q", tc.in, c.Server(), tc.want)
		}
	}
}

func TestRequestsAndAnswers(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case r.Method == "GET" && r.URL.Path == "/apis/v1/services/web":
			io.WriteString(w, svcJSON("web", "7"))
		case r.Method == "GET" && r.URL.Path == "/apis/v1/services":
			fmt.Fprintf(w, `{"apiVersion":"constellation/v1","kind":"ServiceList","metadata":{"resourceVersion":"9"},"items":[%s,%s]}`, svcJSON("a", "3"), svcJSON("b", "4"))
		case r.Method == "PUT" && r.URL.Path == "/apis/v1/services/web":
			b, _ := io.ReadAll(r.Body)
			var s v1.Service
			if err := json.Unmarshal(b, &s); err != nil || s.Spec.Image != "nginx:2" {
				http.Error(w, "bad body", 400)
				return
			}
			if r.URL.Query().Get("dryRun") != "true" {
				w.WriteHeader(http.StatusCreated)
			}
			io.WriteString(w, svcJSON("web", "8"))
		case r.Method == "PUT" && r.URL.Path == "/apis/v1/services/web/status":
			io.WriteString(w, svcJSON("web", "10"))
		case r.Method == "DELETE":
			io.WriteString(w, svcJSON("web", "11"))
		case r.Method == "POST" && r.URL.Path == "/apis/v1/services/web/undo":
			io.WriteString(w, svcJSON("web", "12"))
		case r.URL.Path == "/api/routes":
			io.WriteString(w, `[{"entryPoints":["web"],"rule":"Host(`+"`a`"+`)","service":"web","servers":["10.0.0.1:32768"]}]`)
		default:
			http.NotFound(w, r)
		}
	})
	c := newClient(t, h, "s3cret")
	ctx := context.Background()

	o, err := c.Get(ctx, "svc", "web")
	if err != nil || o.GetMetadata().ResourceVersion != "7" {
		t.Fatalf("Get = %v, %v", o, err)
	}
	l, err := c.List(ctx, "services", "app=web,tier!=db")
	if err != nil || l.ResourceVersion != "9" || len(l.Items) != 2 || l.Items[1].GetMetadata().Name != "b" {
		t.Fatalf("List = %+v, %v", l, err)
	}
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{Image: "nginx:2"}}
	res, err := c.Put(ctx, s, client.PutOptions{})
	if err != nil || !res.Created || res.Object.GetMetadata().ResourceVersion != "8" {
		t.Fatalf("Put = %+v, %v", res, err)
	}
	res, err = c.Put(ctx, s, client.PutOptions{DryRun: true})
	if err != nil || res.Created {
		t.Fatalf("Put dry run = %+v, %v", res, err)
	}
	if o, err := c.PutStatus(ctx, s); err != nil || o.GetMetadata().ResourceVersion != "10" {
		t.Fatalf("PutStatus = %v, %v", o, err)
	}
	if o, err := c.Delete(ctx, "service", "web"); err != nil || o == nil {
		t.Fatalf("Delete = %v, %v", o, err)
	}
	if u, err := c.Undo(ctx, "web"); err != nil || u.Metadata.ResourceVersion != "12" {
		t.Fatalf("Undo = %v, %v", u, err)
	}
	rs, err := c.Routes(ctx)
	if err != nil || len(rs.Items) != 1 || rs.Items[0].Servers[0] != "10.0.0.1:32768" || rs.Items[0].Rule != "Host(`a`)" {
		t.Fatalf("Routes = %+v, %v", rs, err)
	}
	if _, err := c.Get(ctx, "nosuchkind", "x"); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("unknown kind: %v", err)
	}

	want := []string{
		"GET /apis/v1/services/web auth=Bearer s3cret",
		"GET /apis/v1/services?labelSelector=app%3Dweb%2Ctier%21%3Ddb auth=Bearer s3cret",
		"PUT /apis/v1/services/web auth=Bearer s3cret",
		"PUT /apis/v1/services/web?dryRun=true auth=Bearer s3cret",
		"PUT /apis/v1/services/web/status auth=Bearer s3cret",
		"DELETE /apis/v1/services/web auth=Bearer s3cret",
		"POST /apis/v1/services/web/undo auth=Bearer s3cret",
		"GET /api/routes auth=Bearer s3cret",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		code       int
		body       string
		msg, field string
		check      func(error) bool
	}{
		{422, `{"error":"services/web: spec.ports[0].containerPort: must be 1-65535, got 0","field":"spec.ports[0].containerPort"}`,
			"services/web: spec.ports[0].containerPort: must be 1-65535, got 0", "spec.ports[0].containerPort", nil},
		{404, `{"error":"services/web: not found"}`, "services/web: not found", "", client.IsNotFound},
		{409, `{"error":"services/web: resourceVersion conflict: have 5, got 4"}`, "services/web: resourceVersion conflict: have 5, got 4", "", client.IsConflict},
		{401, `{"error":"invalid bearer token"}`, "invalid bearer token", "", client.IsUnauthorized},
		{410, `{"error":"too old"}`, "too old", "", client.IsGone},
		{503, "no quorum\n", "no quorum", "", nil},
		{502, "<html>bad gateway</html>", "server answered 502 Bad Gateway", "", nil},
	} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			io.WriteString(w, tc.body)
		})
		c := newClient(t, h, "")
		_, err := c.Get(context.Background(), "services", "web")
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("%d: error %T %v, want *client.Error", tc.code, err, err)
		}
		if ce.StatusCode != tc.code || ce.Error() != tc.msg || ce.Field != tc.field {
			t.Errorf("%d: got %+v (%q)", tc.code, ce, ce.Error())
		}
		if tc.check != nil && !tc.check(err) {
			t.Errorf("%d: predicate false for %v", tc.code, err)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := client.New(client.Config{Server: url})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(context.Background(), "nodes", "")
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Server != url || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %T %v, want ConnError to %s wrapping ECONNREFUSED", err, err, url)
	}
}

func TestWatch(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" || r.URL.Query().Get("resourceVersion") != "5" || r.URL.Query().Get("labelSelector") != "app=web" {
			http.Error(w, `{"error":"bad query"}`, 400)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, typ := range []string{"ADDED", "MODIFIED", "DELETED"} {
			fmt.Fprintf(w, `{"type":%q,"object":%s}`+"\n", typ, svcJSON("web", "6"))
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, `{"type":"ERROR","object":{"error":"requested revision has been compacted","code":410}}`+"\n")
	})
	c := newClient(t, h, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := c.Watch(ctx, "svc", client.WatchOptions{ResourceVersion: "5", Selector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev := range ch {
		if ev.Type == client.ErrorEvent {
			got = append(got, fmt.Sprintf("ERROR gone=%t", client.IsGone(ev.Err)))
			continue
		}
		got = append(got, string(ev.Type)+" "+ev.Object.GetMetadata().Name)
	}
	want := "ADDED web,MODIFIED web,DELETED web,ERROR gone=true"
	if strings.Join(got, ",") != want {
		t.Fatalf("events %v, want %s", got, want)
	}

	// A bad request is an error from Watch itself, not an event.
	if _, err := c.Watch(ctx, "svc", client.WatchOptions{}); client.StatusCode(err) != 400 {
		t.Fatalf("bad watch: %v", err)
	}
}

func TestWatchStopsOnCancel(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := newClient(t, h, "")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx, "nodes", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch channel not closed after cancel")
	}
}

func TestDecodeObjectToleratesNewFields(t *testing.T) {
	o, err := client.DecodeObject([]byte(`{"apiVersion":"constellation/v1","kind":"Node","metadata":{"name":"n1"},"spec":{"futureField":1},"status":{}}`))
	if err != nil || o.(*v1.Node).Metadata.Name != "n1" {
		t.Fatalf("DecodeObject = %v, %v", o, err)
	}
	if _, err := client.DecodeObject([]byte(`{"kind":"Pod"}`)); err == nil {
		t.Fatal("unknown kind decoded")
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// The agent serves a RouteList of richer rows; Routes fills in Rule and Servers from them.
func TestRoutesRouteList(t *testing.T) {
	body := `{"items":[
	  {"protocol":"http","service":"hello","router":"hello-http-0","entryPoints":["web"],"host":"hello.example.com","path":"/api","endpoints":["10.0.0.1:32768"]},
	  {"protocol":"tcp","service":"db","router":"db-tcp-0","entryPoints":["pg"],"host":"*","tls":true,"passthrough":true,"endpoints":[]},
	  {"protocol":"udp","service":"dns","router":"dns-udp-0","entryPoints":["dns"],"endpoints":["10.0.0.2:5353"]}],
	 "problems":[{"service":"web","field":"spec.routes.http[0].host","message":"claimed by services/other"}]}`
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }), "")
	rs, err := c.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs.Items {
		got = append(got, fmt.Sprintf("%s|%s|%s|%v", r.Protocol, r.Rule, r.Service, r.Servers))
	}
	want := "http|Host(`hello.example.com`) && PathPrefix(`/api`)|hello|[10.0.0.1:32768];tcp|HostSNI(`*`)|db|[];udp||dns|[10.0.0.2:5353]"
	if strings.Join(got, ";") != want {
		t.Fatalf("routes:\n%s\nwant:\n%s", strings.Join(got, ";"), want)
	}
	if len(rs.Problems) != 1 || rs.Problems[0].String() != "services/web: spec.routes.http[0].host: claimed by services/other" {
		t.Fatalf("problems: %+v", rs.Problems)
	}
}
