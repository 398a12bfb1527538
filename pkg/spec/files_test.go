package spec

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// TestConfigAndFiles: Config, BinaryConfig and the file options encode to what api/v1 reads,
// with the server's defaults (paths, modes) filled in, and a bad entry fails Encode with its
// field path.
func TestConfigAndFiles(t *testing.T) {
	b, err := Encode(
		Config("prom", map[string]string{"prometheus.yml": "scrape_configs: []\n"}),
		BinaryConfig("blob", map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G', 0}}),
		Service("prometheus", "prom/prometheus:v2.55.1",
			ConfigFile("/etc/prometheus/prometheus.yml", "prom", "prometheus.yml"),
			ConfigFileMode("/entrypoint.sh", "prom", "", 0o555),
			SecretFile("", "db", "password"),
			SecretFileMode("/run/secrets/token", "api", "token", 0o444),
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil || len(raws) != 3 {
		t.Fatalf("%v: %s", err, b)
	}
	var objs []v1.Object
	for _, r := range raws {
		o, err := v1.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	if c := objs[0].(*v1.Config); c.Spec.Data["prometheus.yml"] != "scrape_configs: []\n" {
		t.Errorf("config data %q", c.Spec.Data)
	}
	if c := objs[1].(*v1.Config); string(c.Spec.BinaryData["logo.png"]) != "\x89PNG\x00" {
		t.Errorf("binary data %q", c.Spec.BinaryData)
	}
	want := []v1.FileMount{
		{Path: "/etc/prometheus/prometheus.yml", Config: "prom", Key: "prometheus.yml", Mode: 0o444},
		{Path: "/entrypoint.sh", Config: "prom", Mode: 0o555},
		{Path: "/run/secrets/db", Secret: "db", Key: "password", Mode: 0o400},
		{Path: "/run/secrets/token", Secret: "api", Key: "token", Mode: 0o444},
	}
	got := objs[2].(*v1.Service).Spec.Files
	if len(got) != len(want) {
		t.Fatalf("files %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("files[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}

	_, err = Encode(Service("web", "nginx:1.27", ConfigFile("etc/nginx.conf", "web", "nginx.conf"), ReadOnlyRoot()))
	if err == nil || !strings.Contains(err.Error(), "spec.files[0].path") || !strings.Contains(err.Error(), "readOnlyRootFilesystem") {
		t.Fatalf("bad files: err %v", err)
	}
}
