package runtime

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

func (c *cluster) put(o v1.Object) {
	c.t.Helper()
	o.Default()
	if errs := o.Validate(); len(errs) > 0 {
		c.t.Fatal(errs)
	}
	cur, err := c.st.Get(c.ctx, o.GetTypeMeta().Kind, o.GetMetadata().Name)
	if err == nil {
		o.GetMetadata().ResourceVersion = cur.GetMetadata().ResourceVersion
		if _, err := c.st.Update(c.ctx, o); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	if _, err := c.st.Create(c.ctx, o); err != nil {
		c.t.Fatal(err)
	}
}

func configObj(name string, data map[string]string) *v1.Config {
	return &v1.Config{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindConfig}, Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ConfigSpec{Data: data}}
}

// statIn reads files out of the container as the engine sees them (`docker cp ID:PATH -`, a tar
// stream): one "PATH MODE UID:GID CONTENT" line per file.
func statIn(t *testing.T, id string, paths ...string) string {
	t.Helper()
	var lines []string
	for _, p := range paths {
		out, err := exec.Command("docker", "cp", id+":"+p, "-").Output()
		if err != nil {
			t.Fatalf("docker cp %s: %v", p, err)
		}
		tr := tar.NewReader(bytes.NewReader(out))
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("docker cp %s: %v", p, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %04o %d:%d %s", p, hdr.Mode&0o777, hdr.Uid, hdr.Gid, b))
	}
	return strings.Join(lines, "\n")
}

// TestFilesOnRealDocker: spec.files from a Secret and Configs appear in the running container
// with their content, modes and root ownership; no mount carries them (they are copied into
// the container's own layer); a change of a Config that is read replaces the replica with one
// showing the new content; a missing Config holds the replica back with a reason naming it.
func TestFilesOnRealDocker(t *testing.T) {
	c := newCluster(t)
	c.put(&v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: "db"},
		Spec: v1.SecretSpec{Data: v1.SecretData{"password": "hunter2"}}})
	c.put(configObj("prom", map[string]string{"prometheus.yml": "scrape: v1", "rules.yml": "rules: v1"}))
	c.put(configObj("motd", map[string]string{"motd": "hello"}))
	c.put(configObj("unrelated", map[string]string{"x": "1"}))
	sp := v1.ServiceSpec{Image: "constellation-test/tool:1", Args: []string{"serve"}, Replicas: i32(1),
		Env: []v1.EnvVar{{Name: "INTERVAL", Value: "1s"}},
		Files: []v1.FileMount{
			{Secret: "db"}, // default path /run/secrets/db, mode 0400, the only key
			{Config: "prom", Key: "prometheus.yml", Path: "/etc/prometheus/prometheus.yml"},
			{Config: "motd", Path: "/etc/motd", Mode: 0o640},
		}}
	c.apply("files", sp)
	c.waitFor("the files replica ready", 60*time.Second, c.converged("files"))
	reps := c.replicas("files")
	if len(reps) != 1 {
		t.Fatalf("replicas %+v", reps)
	}
	got := statIn(t, reps[0].ContainerID, "/run/secrets/db", "/etc/prometheus/prometheus.yml", "/etc/motd")
	want := "/run/secrets/db 0400 0:0 hunter2\n/etc/prometheus/prometheus.yml 0444 0:0 scrape: v1\n/etc/motd 0640 0:0 hello"
	if got != want {
		t.Fatalf("files in the container:\n%s\nwant:\n%s", got, want)
	}
	out, err := exec.Command("docker", "inspect", "-f", "{{json .Mounts}}", reps[0].ContainerID).Output()
	if err != nil {
		t.Fatal(err)
	}
	var mounts []struct{ Type, Source, Destination string }
	if err := json.Unmarshal(out, &mounts); err != nil || len(mounts) != 0 {
		t.Fatalf("mounts %s (%v): the files must be in the container's own layer", out, err)
	}

	// Changes of what the Service does not read make no revision: the scheduler test
	// TestRunRollsOnFileSourceChange proves it with a barrier; here they are written before
	// the change that rolls, which must still roll exactly once to the new content.
	first, hash := reps[0].ContainerID, spechash.Current(c.get("files"))
	c.put(configObj("unrelated", map[string]string{"x": "2"}))
	c.put(configObj("prom", map[string]string{"prometheus.yml": "scrape: v1", "rules.yml": "rules: v2"}))
	// A change of what it reads rolls it.
	c.put(configObj("prom", map[string]string{"prometheus.yml": "scrape: v2", "rules.yml": "rules: v2"}))
	c.waitFor("a new revision", 20*time.Second, func() (bool, string) {
		h := spechash.Current(c.get("files"))
		return h != hash && spechash.SpecPart(h) == spechash.SpecPart(hash), h
	})
	c.waitFor("the replica replaced", 60*time.Second, c.converged("files"))
	reps = c.replicas("files")
	if len(reps) != 1 || reps[0].ContainerID == first {
		t.Fatalf("replicas after the Config change %+v (first container %s)", reps, first)
	}
	if got := statIn(t, reps[0].ContainerID, "/etc/prometheus/prometheus.yml"); got != "/etc/prometheus/prometheus.yml 0444 0:0 scrape: v2" {
		t.Fatalf("after the change: %s", got)
	}

	// A Config that does not exist: the replica waits, saying which.
	sp2 := sp
	sp2.Files = []v1.FileMount{{Config: "missing", Path: "/etc/x"}}
	c.apply("waits", sp2)
	c.waitFor("the replica waiting for its Config", 30*time.Second, func() (bool, string) {
		for _, r := range c.replicas("waits") {
			if r.Reason == v1.ReasonFileSourceNotFound && strings.Contains(r.Message, "configs/missing does not exist") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", c.replicas("waits"))
	})
	c.put(configObj("missing", map[string]string{"x": "here now"}))
	c.waitFor("the replica running once its Config exists", 60*time.Second, c.converged("waits"))
	if got := statIn(t, c.replicas("waits")[0].ContainerID, "/etc/x"); got != "/etc/x 0444 0:0 here now" {
		t.Fatalf("late Config: %s", got)
	}
}
