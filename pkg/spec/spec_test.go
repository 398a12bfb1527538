package spec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestPrintValidStack(t *testing.T) {
	var out, errOut bytes.Buffer
	code := print(&out, &errOut,
		Service("web", "registry.local/web:1", Replicas(2), Port("http", 8080),
			HTTPHealth("/healthz", "http", time.Second), HTTPRoute("web.example.com", "/", "http"),
			EnvFromSecret("DB_PASSWORD", "db", "password"), EnvFromSecretNoRestart("DB_USER", "db", "user")),
		Secret("db", map[string]string{"password": "x"}),
		LeaseRecord("lb", "example.com", "lb.example.com", "lb"),
	)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil || len(raw) != 3 {
		t.Fatalf("output is not a JSON array of 3: %v\n%s", err, out.String())
	}
	obj, err := v1.Decode(raw[0])
	if err != nil {
		t.Fatal(err)
	}
	s := obj.(*v1.Service)
	if *s.Spec.Replicas != 2 || s.Spec.Routes.HTTP[0].EntryPoints[0] != "web" {
		t.Fatalf("defaults not applied: %+v", s.Spec)
	}
	if e := s.Spec.Env; len(e) != 2 || !e[0].SecretRef.Rolls() || e[1].SecretRef.Rolls() {
		t.Fatalf("env %+v %+v: want a rolling and a restart: never secretRef", e[0].SecretRef, e[1].SecretRef)
	}
}

func TestPrintReportsEveryProblem(t *testing.T) {
	var out, errOut bytes.Buffer
	code := print(&out, &errOut,
		Service("web", "", Port("http", 0)),
		Service("web", "x"),
	)
	msg := errOut.String()
	if code == 0 || out.Len() != 0 {
		t.Fatal("invalid stack printed")
	}
	for _, want := range []string{"services/web: spec.image: required", "spec.ports[0].containerPort", "services/web: defined twice"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
}
