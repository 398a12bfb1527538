package ctl_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// tempImage tags the shared tool image under a unique name and removes that tag at the end.
func tempImage(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ref := "constellation-test/peerimg:" + hex.EncodeToString(b[:])
	if out, err := exec.Command("docker", "tag", toolImage, ref).CombinedOutput(); err != nil {
		t.Fatalf("docker tag %s %s: %v\n%s", toolImage, ref, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", ref).Run() })
	return ref
}

type imageRow struct {
	Node      string   `json:"node"`
	Image     string   `json:"image"`
	ID        string   `json:"id"`
	SizeBytes int64    `json:"sizeBytes"`
	Services  []string `json:"services"`
}

// TestCtlImageLs: both simulated nodes list the image with the Service that uses it, in the
// table and as JSON; a node that cannot be reached is named on stderr, the others still listed.
func TestCtlImageLs(t *testing.T) {
	n := newNodes(t)
	ref := tempImage(t)
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: n.svc + "-img"}}
	svc.Spec.Image = "docker.io/" + ref // the normalised form matches the engine's tag
	svc.Default()
	if _, err := n.st.Create(n.ctx, svc); err != nil {
		t.Fatal(err)
	}
	idOut, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", ref).Output()
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(idOut))

	r := n.ctl(readToken, "", "image", "ls")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "NODE") {
		t.Fatalf("image ls: %+v", r)
	}
	short := strings.TrimPrefix(id, "sha256:")[:12]
	for _, node := range []string{n.a, n.b} {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(node) + `\s+` + regexp.QuoteMeta(ref) + `\s+` + short + `\s+\S+\s+` + regexp.QuoteMeta(svc.Metadata.Name) + `$`)
		if !line.MatchString(r.stdout) {
			t.Fatalf("image ls: no row for %s on %s used by %s:\n%s", ref, node, svc.Metadata.Name, r.stdout)
		}
	}
	// The shared tool image is used by the fixture's Service.
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n.a) + `\s+` + regexp.QuoteMeta(toolImage) + `\s+\S+\s+\S+\s+` + regexp.QuoteMeta(n.svc) + `$`).MatchString(r.stdout) {
		t.Fatalf("image ls: %s not shown used by %s:\n%s", toolImage, n.svc, r.stdout)
	}

	r = n.ctl(readToken, "", "image", "ls", n.b, "-o", "json")
	var rows []imageRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 {
		t.Fatalf("image ls -o json: %v: %+v", err, r)
	}
	i := slices.IndexFunc(rows, func(x imageRow) bool { return x.Image == ref })
	if i < 0 || rows[i].Node != n.b || rows[i].ID != id || rows[i].SizeBytes <= 0 || !slices.Equal(rows[i].Services, []string{svc.Metadata.Name}) {
		t.Fatalf("image ls -o json: row of %s: %+v", ref, rows)
	}
	if slices.ContainsFunc(rows, func(x imageRow) bool { return x.Node != n.b }) {
		t.Fatalf("image ls %s listed other nodes: %+v", n.b, rows)
	}

	gone := n.svc + "-gone"
	nd := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: gone}}
	if _, err := n.st.Create(n.ctx, nd); err != nil {
		t.Fatal(err)
	}
	r = n.ctl(readToken, "", "image", "ls")
	if r.code == 0 || !strings.Contains(r.stderr, "node "+gone) || !strings.Contains(r.stdout, n.a) || !strings.Contains(r.stdout, ref) {
		t.Fatalf("image ls with an unreachable node: %+v", r)
	}
	if r := n.ctl(readToken, "", "image", "ls", "no-such-node"); r.code == 0 || !strings.Contains(r.stderr, "nodes/no-such-node") {
		t.Fatalf("image ls of an unknown node: %+v", r)
	}
}

// TestCtlImagePush: an image the node already has is not sent; --force sends it (docker save
// streamed to the node's load) and prints the bytes; a missing local image, an unknown node and
// a read token are refused with the reason.
func TestCtlImagePush(t *testing.T) {
	n := newNodes(t)
	ref := tempImage(t)
	r := n.ctl(token, "", "image", "push", ref, "--to", n.a)
	if r.code != 0 || !strings.Contains(r.stdout, "already on "+n.a+", 0 bytes sent") {
		t.Fatalf("push of an image the node has: %+v", r)
	}
	r = n.ctl(token, "", "image", "push", ref, "--to", n.b, "--force")
	m := regexp.MustCompile(`pushed ` + regexp.QuoteMeta(ref) + ` \(\w{12}\) to ` + regexp.QuoteMeta(n.b) + `: \S+ \((\d+) bytes\) sent, loaded ` + regexp.QuoteMeta(ref)).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] == "0" {
		t.Fatalf("push --force: %+v", r)
	}
	if r := n.ctl(token, "", "image", "push", "constellation-test/never-built:0", "--to", n.a); r.code == 0 || !strings.Contains(r.stderr, "not in this machine's Docker engine") {
		t.Fatalf("push of a missing image: %+v", r)
	}
	if r := n.ctl(token, "", "image", "push", ref, "--to", "nowhere"); r.code == 0 || !strings.Contains(r.stderr, "--to nowhere: not a node") {
		t.Fatalf("push to an unknown node: %+v", r)
	}
	if r := n.ctl(readToken, "", "image", "push", ref, "--to", n.a, "--force"); r.code == 0 || !strings.Contains(r.stderr, "has the read scope; PUT /node/"+n.a+"/images/archive needs admin") {
		t.Fatalf("push with a read token: %+v", r)
	}
}

// TestCtlImagePull: `ctl image pull` asks each --to node (the second one forwarded) to fetch
// the image through its pull order and prints where it came from; an image already there is
// "already there"; one no node gives is the node's error; a read token is refused.
func TestCtlImagePull(t *testing.T) {
	n := newNodes(t)
	ref := tempImage(t)
	r := n.ctl(token, "", "image", "pull", ref, "--to", n.a)
	if r.code != 0 || !regexp.MustCompile(`^`+regexp.QuoteMeta(n.a)+`: image `+regexp.QuoteMeta(ref)+` \(\w{12}\) already there\n$`).MatchString(r.stdout) {
		t.Fatalf("pull of an image the node has: %+v", r)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	fetchable := "constellation-test/fetchable:" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", fetchable).Run() })
	// n.b is asked through n.a (forwarded); the one engine both simulate then holds it.
	r = n.ctl(token, "", "image", "pull", fetchable, "--to", n.b+","+n.a)
	want := regexp.MustCompile(`^` + regexp.QuoteMeta(n.b) + `: image ` + regexp.QuoteMeta(fetchable) + ` \(\w{12}\) fetched from node peer-of-` + regexp.QuoteMeta(n.b) + ` in \S+: \S+ \(4242 bytes\)\n` +
		regexp.QuoteMeta(n.a) + `: image ` + regexp.QuoteMeta(fetchable) + ` \(\w{12}\) already there\n$`)
	if r.code != 0 || !want.MatchString(r.stdout) {
		t.Fatalf("pull of an image another node gives: %+v", r)
	}
	r = n.ctl(token, "", "image", "pull", "constellation-test/never-built:0", "--to", n.b)
	if r.code == 0 || !strings.Contains(r.stderr, "node "+n.b+": fetch image constellation-test/never-built:0: no other node gave image") {
		t.Fatalf("pull of an image no node gives: %+v", r)
	}
	if r := n.ctl(token, "", "image", "pull", ref); r.code == 0 || !strings.Contains(r.stderr, "--to: required") {
		t.Fatalf("pull without --to: %+v", r)
	}
	if r := n.ctl(token, "", "image", "pull", ref, "--to", "nowhere"); r.code == 0 || !strings.Contains(r.stderr, "--to nowhere: not a node") {
		t.Fatalf("pull to an unknown node: %+v", r)
	}
	if r := n.ctl(readToken, "", "image", "pull", ref, "--to", n.b); r.code == 0 || !strings.Contains(r.stderr, "POST /node/"+n.b+"/images/pull needs admin") {
		t.Fatalf("pull with a read token: %+v", r)
	}
	r = n.ctl(token, "", "image", "pull", ref, "--to", n.a, "--to", n.b)
	if r.code != 0 || strings.Count(r.stdout, "already there") != 2 || !strings.HasPrefix(r.stdout, n.a+":") {
		t.Fatalf("pull to two nodes: %+v", r)
	}
}
