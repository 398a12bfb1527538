package traefik

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

type fixture struct {
	Services []*v1.Service      `json:"services"`
	Secrets  []*v1.Secret       `json:"secrets"`
	Nodes    []observed.Node    `json:"nodes"`
	Replicas []observed.Replica `json:"replicas"`
}

func loadFixture(t testing.TB, path string) State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f fixture
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return State{Services: f.Services, Secrets: f.Secrets, Nodes: f.Nodes, Replicas: f.Replicas}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (go test ./pkg/traefik -run %s -update, then review the diff)\n--- got ---\n%s", path, t.Name(), got)
	}
}

func renderProblems(ps []Problem) []byte {
	var b bytes.Buffer
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// TestGolden renders every testdata/render/NAME.json into NAME.golden.json (the exact bytes served
// to Traefik) and NAME.problems.golden.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/render/*.json")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			st := loadFixture(t, in)
			cfg, problems := Render(st)
			body, err := Encode(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// The golden file is the served bytes, indented for review.
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata/render", name+".golden.json"), pretty.Bytes())
			golden(t, filepath.Join("testdata/render", name+".problems.golden"), renderProblems(problems))
		})
	}
	if n < 6 {
		t.Fatalf("found %d fixtures under testdata/render, want at least 6", n)
	}
}

// TestRenderDeterministic shuffles every input slice and map-insertion order: the bytes must not
// change, or Traefik would reload for nothing.
func TestRenderDeterministic(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/render/*.json")
	rng := rand.New(rand.NewSource(1))
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		st := loadFixture(t, in)
		cfg, probs := Render(st)
		want, _ := Encode(cfg)
		wantP := renderProblems(probs)
		for i := 0; i < 20; i++ {
			rng.Shuffle(len(st.Services), func(a, b int) { st.Services[a], st.Services[b] = st.Services[b], st.Services[a] })
			rng.Shuffle(len(st.Replicas), func(a, b int) { st.Replicas[a], st.Replicas[b] = st.Replicas[b], st.Replicas[a] })
			rng.Shuffle(len(st.Nodes), func(a, b int) { st.Nodes[a], st.Nodes[b] = st.Nodes[b], st.Nodes[a] })
			rng.Shuffle(len(st.Secrets), func(a, b int) { st.Secrets[a], st.Secrets[b] = st.Secrets[b], st.Secrets[a] })
			cfg, probs := Render(st)
			got, _ := Encode(cfg)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: shuffled input rendered different bytes:\n%s\nvs\n%s", in, got, want)
			}
			if gotP := renderProblems(probs); !bytes.Equal(gotP, wantP) {
				t.Fatalf("%s: shuffled input gave different problems:\n%s\nvs\n%s", in, gotP, wantP)
			}
		}
	}
}

func TestRenderHealthAware(t *testing.T) {
	st := loadFixture(t, "testdata/render/basic.json")
	cfg, _ := Render(st)
	got := cfg.HTTP.Services["web-http-0"].LoadBalancer.Servers
	want := []Server{{URL: "http://10.0.0.1:32001"}, {URL: "http://10.0.0.2:32002"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("servers = %v, want %v (ready replicas on alive nodes only; 0.0.0.0 replaced by the node's address)", got, want)
	}
	// Every replica turns unhealthy: the router stays, with an empty server list (503, not 404).
	for i := range st.Replicas {
		st.Replicas[i].Health = v1.HealthUnhealthy
	}
	cfg, _ = Render(st)
	if _, ok := cfg.HTTP.Routers["web-http-0"]; !ok {
		t.Fatal("router disappeared when no replica is healthy")
	}
	lb := cfg.HTTP.Services["web-http-0"].LoadBalancer
	if lb.Servers == nil || len(lb.Servers) != 0 {
		t.Fatalf("servers = %#v, want an empty non-nil list", lb.Servers)
	}
	body, _ := Encode(cfg)
	if !bytes.Contains(body, []byte(`"servers":[]`)) {
		t.Fatalf("encoded config lacks an explicit empty servers list:\n%s", body)
	}
}

// An agent restart keeps its node's endpoints for the restart grace (its containers keep
// running); past the grace, or for a dead node, they leave at once.
func TestRenderKeepsRestartingNodesEndpoints(t *testing.T) {
	st := loadFixture(t, "testdata/render/basic.json")
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st.Health = nodehealth.Policy{RestartGrace: time.Minute}
	servers := func() string {
		cfg, _ := Render(st)
		var out []string
		for _, s := range cfg.HTTP.Services["web-http-0"].LoadBalancer.Servers {
			out = append(out, s.URL)
		}
		return strings.Join(out, " ")
	}
	for i := range st.Nodes {
		if st.Nodes[i].Name == "n3" {
			st.Nodes[i].State, st.Nodes[i].LastChange = observed.StateRestarting, t0
		}
	}
	st.Now = t0.Add(59 * time.Second)
	if got := servers(); !strings.Contains(got, "10.0.0.3") {
		t.Fatalf("a restarting node's endpoint left within the grace: %s", got)
	}
	st.Now = t0.Add(61 * time.Second)
	if got := servers(); strings.Contains(got, "10.0.0.3") {
		t.Fatalf("a restarting node's endpoint stayed past the grace: %s", got)
	}
}

func TestRenderEmptyCluster(t *testing.T) {
	cfg, problems := Render(State{})
	body, err := Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "{}\n" || len(problems) != 0 {
		t.Fatalf("empty state rendered %q, problems %v", body, problems)
	}
}

func TestRenderDoesNotLeakSecretsIntoProblems(t *testing.T) {
	st := loadFixture(t, "testdata/render/full-http.json")
	st.Secrets[0].Spec.Data["eve"] = "bad\nvalue-s3cr3t"
	_, problems := Render(st)
	if len(problems) != 1 || !strings.Contains(problems[0].Message, `"eve"`) {
		t.Fatalf("problems = %v, want one about entry eve", problems)
	}
	if strings.Contains(problems[0].String(), "s3cr3t") {
		t.Fatalf("problem leaks the secret value: %s", problems[0])
	}
}

func TestRoutesRows(t *testing.T) {
	for _, name := range []string{"full-http", "tcp-udp", "scaled-to-zero"} {
		t.Run(name, func(t *testing.T) {
			cfg, problems := Render(loadFixture(t, "testdata/render/"+name+".json"))
			b, err := json.MarshalIndent(RouteList{Items: Routes(cfg), Problems: problems}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "testdata/render/"+name+".routes.golden", append(b, '\n'))
		})
	}
}

func TestParseRuleRoundTrip(t *testing.T) {
	for _, tc := range []struct{ host, path string }{
		{"a.example.com", ""}, {"a.example.com", "/x/y"}, {"*.example.com", "/"}, {"*.a-b.example.com", ""},
	} {
		rule, err := httpRule(tc.host, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		h, p := parseRule(rule)
		if h != tc.host || p != tc.path {
			t.Errorf("parseRule(%q) = %q, %q; want %q, %q", rule, h, p, tc.host, tc.path)
		}
	}
	if got := serviceOf("my-http-svc-http-12-redirect"); got != "my-http-svc" {
		t.Errorf("serviceOf = %q", got)
	}
}

// FuzzIsHostName keeps the renderer's fast host check in agreement with api/v1's.
func FuzzIsHostName(f *testing.F) {
	for _, s := range []string{"a.example.com", "*.example.com", "example.com.", "a..b", "a.", ".", "", "*.", "-a.com", "a-.com",
		"A.B.C", "a_b.com", "xn--bcher-kva.example", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com", "**.a", "*.*.a", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isHostName(s), v1.IsDNSName(s, true); got != want {
			t.Fatalf("isHostName(%q) = %v, v1.IsDNSName = %v", s, got, want)
		}
	})
}

func TestRenderKnownEntryPoints(t *testing.T) {
	st := loadFixture(t, "testdata/render/tcp-udp.json")
	st.EntryPoints = []string{"postgres", "dns", "dnstcp"}
	cfg, problems := Render(st)
	if _, ok := cfg.TCP.Routers["db-tcp-1"]; ok {
		t.Error("route on undefined entry point pgplain rendered")
	}
	if len(cfg.TCP.Routers) != 3 || len(cfg.UDP.Routers) != 1 {
		t.Errorf("routers tcp %d udp %d, want 3 and 1", len(cfg.TCP.Routers), len(cfg.UDP.Routers))
	}
	if len(problems) != 1 || problems[0].String() != `services/db: spec.routes.tcp[1].entryPoint: entry point "pgplain" is not defined in the local Traefik` {
		t.Errorf("problems = %v", problems)
	}
}
