package spec

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/blocks")

// TestBlocksGolden renders each building block through Encode (defaults and validation, as
// Print does) and compares the JSON with testdata/blocks/NAME.json.
func TestBlocksGolden(t *testing.T) {
	rs, rrs := RedisReplicaSet("cache", "redis:7.4-alpine", 3)
	for _, tc := range []struct {
		name string
		objs []v1.Object
	}{
		{"postgres", []v1.Object{Postgres("app-db", "postgres:16-alpine", "app", "app", Key("app-db", "password"))}},
		{"postgres-override", []v1.Object{Postgres("app-db", "postgres:16-alpine", "app", "app", Key("app-db", "password"),
			Resources("1", 1024), Args("postgres", "-c", "max_connections=200"))}},
		{"redis", []v1.Object{Redis("cache", "redis:7.4-alpine")}},
		{"redis-replicaset", []v1.Object{rs, rrs}},
		{"webapp", []v1.Object{WebApp("blog", "ghost:5.101-alpine", "blog.example.com", 2368, "/ghost/api/admin/site/")}},
		{"webapp-nohealth", []v1.Object{WebApp("site", "nginx:1.27-alpine", "www.example.com", 80, "")}},
		{"egress", []v1.Object{
			Service("warp", "caomingjun/warp:2024.11.0", Port("proxy", 1080), TCPHealth("proxy", 10*time.Second)),
			Service("scraper", "ghcr.io/example/scraper:2", EgressVia("warp")),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.objs...)
			if err != nil {
				t.Fatalf("block does not validate: %v", err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "blocks", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs (rerun with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestOptionsOverride: options given to a block apply after its own, so a stack can change any
// default the block chose.
func TestOptionsOverride(t *testing.T) {
	s := Postgres("db", "postgres:16", "d", "u", Key("s", "k"), StopGracePeriod(0), ShmSizeMB(512))
	if s.Spec.ShmSizeMB != 512 || s.Spec.StopGracePeriod.Duration != 0 {
		t.Fatalf("override lost: shm %d grace %v", s.Spec.ShmSizeMB, s.Spec.StopGracePeriod)
	}
	g := Service("x", "x", Replicas(3), Global())
	if g.Spec.Replicas != nil || !g.Spec.IsGlobal() {
		t.Fatalf("Global must clear replicas: %+v", g.Spec)
	}
}
