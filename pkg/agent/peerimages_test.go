package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// fakeEngine loads "archives" that are tars of one file named "image" holding a reference: a
// tar cut short fails the load and adds nothing, like docker load.
type fakeEngine struct {
	mu     sync.Mutex
	images map[string]bool
	loads  int
}

func (f *fakeEngine) LoadImage(_ context.Context, r io.Reader) (docker.LoadResult, error) {
	tr := tar.NewReader(r)
	var refs []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docker.LoadResult{}, fmt.Errorf("load image: reading the archive: %w", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return docker.LoadResult{}, fmt.Errorf("load image: reading the archive: %w", err)
		}
		if h.Name == "image" {
			refs = append(refs, string(b))
		}
	}
	if len(refs) == 0 {
		return docker.LoadResult{}, docker.ErrBadImageArchive
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	for _, r := range refs {
		f.images[r] = true
	}
	return docker.LoadResult{Loaded: refs}, nil
}

func (f *fakeEngine) HasImage(_ context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[ref], nil
}

// imageTar is a fake archive of ref, padded to a few hundred KB so that a cut lands inside it.
func imageTar(t *testing.T, ref string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	pad := bytes.Repeat([]byte("layer"), 64<<10)
	for _, f := range []struct {
		name string
		body []byte
	}{{"layer.tar", pad}, {"image", []byte(ref)}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakePeer is an agent's peer archive path: it has the images in has, and behaves as mode says.
type fakePeer struct {
	has  map[string]bool
	mode string // "" serves whole; "cut" closes the connection half-way; "trailer" ends early with an error trailer; "stall" sends half, then nothing until the request ends; "noheader" answers nothing until the request ends
	hits int
}

const testPeerSecret = "peer-secret-0123456789"

func (p *fakePeer) server(t *testing.T) *httptest.Server {
	guard := &Agent{clusterTok: testPeerSecret}
	var mu sync.Mutex
	h := guard.peerOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		p.hits++
		mu.Unlock()
		ref := r.URL.Query().Get("ref")
		if r.URL.Path != nodeapi.PeerImageSavePath || !p.has[ref] {
			http.Error(w, `{"error":"no image `+ref+`"}`, http.StatusNotFound)
			return
		}
		b := imageTar(t, ref)
		w.Header().Set("Trailer", nodeapi.TrailerError)
		switch p.mode {
		case "cut":
			_, _ = w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the peer is gone mid-transfer
		case "stall":
			_, _ = w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // alive, connected, silent
		case "noheader":
			<-r.Context().Done()
		case "trailer":
			_, _ = w.Write(b[:len(b)/2])
			w.Header().Set(nodeapi.TrailerError, "node x: save image: engine went away")
		default:
			_, _ = w.Write(b)
		}
	}))
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// The peer fetch asks the alive peers in order and loads the first archive that arrives
// whole; a peer without the image, one gone mid-transfer and one whose save fails are skipped,
// and what each answered is named when none gives it.
func TestPeerImageFetch(t *testing.T) {
	const ref = "constellation-test/app:7"
	cases := []struct {
		name     string
		peers    []*fakePeer
		secret   string
		wantFrom string
		wantErr  []string
		wantHits []int
	}{
		{name: "the first peer has it",
			peers:    []*fakePeer{{has: map[string]bool{ref: true}}, {has: map[string]bool{ref: true}}},
			wantFrom: "n2", wantHits: []int{1, 0}},
		{name: "the first does not, the second does",
			peers:    []*fakePeer{{}, {has: map[string]bool{ref: true}}},
			wantFrom: "n3", wantHits: []int{1, 1}},
		{name: "the first is gone mid-transfer, the second gives it",
			peers:    []*fakePeer{{has: map[string]bool{ref: true}, mode: "cut"}, {has: map[string]bool{ref: true}}},
			wantFrom: "n3", wantHits: []int{1, 1}},
		{name: "none has it whole",
			peers:   []*fakePeer{{}, {has: map[string]bool{ref: true}, mode: "trailer"}},
			wantErr: []string{"no other node gave image " + ref, "n2: has no such image", "n3: ", "engine went away"}, wantHits: []int{1, 1}},
		{name: "no peers", wantErr: []string{"no other alive node"}},
		{name: "a wrong secret is refused",
			peers:  []*fakePeer{{has: map[string]bool{ref: true}}},
			secret: "not-the-secret-at-all", wantErr: []string{"n2: 401", "needs the cluster (peer) secret"}, wantHits: []int{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var peers []imagePeer
			for i, p := range tc.peers {
				peers = append(peers, imagePeer{Node: fmt.Sprintf("n%d", i+2), Base: p.server(t).URL})
			}
			secret := testPeerSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			eng := &fakeEngine{images: map[string]bool{}}
			var mu sync.Mutex
			var progress []string
			pi := &peerImages{peers: func(string) []imagePeer { return peers }, client: &http.Client{}, secret: func() string { return secret },
				engine: eng, log: slog.New(slog.DiscardHandler)}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			from, err := pi.fetch(ctx, ref, func(node string, n int64) {
				mu.Lock()
				defer mu.Unlock()
				if len(progress) == 0 || progress[len(progress)-1] != node {
					progress = append(progress, node)
				}
			})
			if from != tc.wantFrom {
				t.Errorf("from = %q, want %q (err %v)", from, tc.wantFrom, err)
			}
			if tc.wantErr == nil && err != nil {
				t.Errorf("err = %v", err)
			}
			for _, s := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to say %q", err, s)
				}
			}
			has, _ := eng.HasImage(ctx, ref)
			if has != (tc.wantFrom != "") || (has && eng.loads != 1) {
				t.Errorf("engine has the image: %v after %d loads", has, eng.loads)
			}
			for i, want := range tc.wantHits {
				if tc.peers[i].hits != want {
					t.Errorf("peer n%d asked %d times, want %d", i+2, tc.peers[i].hits, want)
				}
			}
			if tc.wantFrom != "" && (len(progress) == 0 || progress[len(progress)-1] != tc.wantFrom) {
				t.Errorf("progress named %v, want it to end with %s", progress, tc.wantFrom)
			}
		})
	}
}

// tempImageTag tags a shared test image under a unique name and removes that tag at the end.
func tempImageTag(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ref := "constellation-test/peerimg:" + hex.EncodeToString(b[:])
	if out, err := exec.Command("docker", "tag", "constellation-test/tool:1", ref).CombinedOutput(); err != nil {
		t.Fatalf("docker tag constellation-test/tool:1 %s (hack/build-test-images.sh builds it): %v\n%s", ref, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", ref).Run() })
	return ref
}

// TestImageRoutesOnRealEngine runs one agent on the real dockerd: the image list shows a
// tagged image; its archive saved through the node API, the tag removed, and the archive
// loaded back through the API, the image is there again with the same ID. A read token lists
// but may not save or load; a missing image is a 404 naming it; the peer path takes the
// cluster secret only, and a peer fetch through it lands the image in the engine.
func TestImageRoutesOnRealEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent on the real dockerd; run without -short")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("admin admin "+testAdminSecret+"\nviewer read "+testViewerSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, a := startAgentStoppable(t, "imgn1", func(c *config.Config) {
		c.API.TokenFile = tokens
		c.Docker.Disabled = false
	})
	admin, err := client.New(client.Config{Server: a.APIAddress(), Token: testAdminSecret})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := client.New(client.Config{Server: a.APIAddress(), Token: testViewerSecret})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := tempImageTag(t)
	id, err := dc.ImageID(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}

	ims, err := viewer.Images(ctx, "imgn1")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ims, func(im nodeapi.ImageInfo) bool { return slices.Contains(im.RepoTags, ref) })
	if i < 0 || ims[i].ID != id || ims[i].SizeBytes <= 0 {
		t.Fatalf("images of imgn1: %s not listed with ID %s and a size", ref, id)
	}
	if _, err := viewer.SaveImage(ctx, "imgn1", ref, io.Discard); client.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("save with a read token: %v, want 403", err)
	}
	if _, err := admin.SaveImage(ctx, "imgn1", "constellation-test/never-built:0", io.Discard); client.StatusCode(err) != http.StatusNotFound ||
		!strings.Contains(err.Error(), "constellation-test/never-built:0") {
		t.Fatalf("save of a missing image: %v, want 404 naming it", err)
	}
	var buf bytes.Buffer
	n, err := admin.SaveImage(ctx, "imgn1", ref, &buf)
	if err != nil || n != int64(buf.Len()) || n < 1000 {
		t.Fatalf("save: %d bytes, %v", n, err)
	}
	if out, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
		t.Fatalf("docker rmi %s: %v\n%s", ref, err, out)
	}
	if ok, _ := dc.HasImage(ctx, ref); ok {
		t.Fatal("the tag is still there")
	}
	if _, err := viewer.LoadImage(ctx, "imgn1", bytes.NewReader(buf.Bytes())); client.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("load with a read token: %v, want 403", err)
	}
	res, err := admin.LoadImage(ctx, "imgn1", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if j := slices.Index(res.Loaded, ref); j < 0 || res.IDs[j] != id || res.Bytes != n || res.Node != "imgn1" {
		t.Fatalf("load answered %+v, want %s (%s) loaded from %d bytes", res, ref, id, n)
	}
	if got, err := dc.ImageID(ctx, ref); err != nil || got != id {
		t.Fatalf("after the load: %q, %v", got, err)
	}
	if _, err := admin.LoadImage(ctx, "imgn1", strings.NewReader("not a tar")); client.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("load of garbage: %v, want 400", err)
	}

	// The peer path: the API token is not the peer secret.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(a.APIAddress())+nodeapi.PeerImageSavePath+"?ref="+ref, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("peer path with an API token: %s, want 401", resp.Status)
	}
	// A peer fetch through the agent's own peer path, with its secret and transport, into the
	// same engine (one dockerd here: the two-engine copy is the e2e harness's).
	pi := &peerImages{peers: func(string) []imagePeer { return []imagePeer{{Node: "imgn1", Base: baseURL(a.APIAddress())}} },
		client: &http.Client{Transport: a.streamTransport()}, secret: func() string { return a.clusterTok }, engine: dc,
		log: slog.New(slog.DiscardHandler)}
	var got int64
	from, err := pi.fetch(ctx, ref, func(_ string, b int64) { got = b })
	if err != nil || from != "imgn1" || got != n {
		t.Fatalf("peer fetch: from %q, %d bytes (saved %d), %v", from, got, n, err)
	}
	if _, err := pi.fetch(ctx, "constellation-test/never-built:0", func(string, int64) {}); err == nil || !strings.Contains(err.Error(), "imgn1: has no such image") {
		t.Fatalf("peer fetch of a missing image: %v", err)
	}
}

const (
	testAdminSecret  = "admin-secret-0123456789"
	testViewerSecret = "viewer-secret-0123456789"
)

// The peers asked are the other alive nodes with an API address, by name; loopback addresses
// are plain HTTP as for every agent-to-agent call, others HTTPS.
func TestImagePeers(t *testing.T) {
	a := &Agent{cfg: config.Default(), view: observed.NewSet()}
	a.cfg.Node.Name = "n1"
	for _, n := range []observed.Node{
		{Name: "n1", API: "127.0.0.1:7001", Alive: true},                 // itself
		{Name: "n4", API: "10.0.0.4:7480", Alive: true},                  // off loopback
		{Name: "n3", API: "127.0.0.1:7003", Alive: true},                 // loopback
		{Name: "n2", API: "127.0.0.1:7002", Alive: false, State: "dead"}, // dead
		{Name: "n5", Alive: true},                                        // no API address yet
	} {
		a.view.SetNode(n)
	}
	got := a.imagePeers("x:1")
	want := []imagePeer{{Node: "n3", Base: "http://127.0.0.1:7003"}, {Node: "n4", Base: "https://10.0.0.4:7480"}}
	if !slices.Equal(got, want) {
		t.Fatalf("imagePeers = %+v, want %+v", got, want)
	}
	// n4 advertises x:1 (as docker.io/library/x:1), the dead n2 too: n4 is asked first, n2
	// not at all; another image keeps the name order.
	a.view.SetNodeImages("n4", []uint64{observed.ImageKey("docker.io/library/x:1")})
	a.view.SetNodeImages("n2", []uint64{observed.ImageKey("x:1")})
	want = []imagePeer{{Node: "n4", Base: "https://10.0.0.4:7480"}, {Node: "n3", Base: "http://127.0.0.1:7003"}}
	if got := a.imagePeers("x:1"); !slices.Equal(got, want) {
		t.Fatalf("imagePeers(x:1) with n4 advertising it = %+v, want %+v", got, want)
	}
	want = []imagePeer{{Node: "n3", Base: "http://127.0.0.1:7003"}, {Node: "n4", Base: "https://10.0.0.4:7480"}}
	if got := a.imagePeers("y:1"); !slices.Equal(got, want) {
		t.Fatalf("imagePeers(y:1) = %+v, want %+v", got, want)
	}
}

// A transfer that stops making progress is abandoned promptly and the next peer asked: a body
// that stalls (idle-read deadline), a peer gossip declares dead mid-body and one dead before
// it answered its header (the alive check), none of them costing the transport's timeouts.
func TestPeerImageFetchAbandons(t *testing.T) {
	const ref = "constellation-test/app:7"
	cases := []struct {
		name    string
		mode    string
		idle    time.Duration
		dead    bool // gossip declares n2 dead once its transfer started
		wantWhy string
	}{
		{name: "a stalled body", mode: "stall", idle: 200 * time.Millisecond, wantWhy: "node n2 sent nothing for 200ms"},
		{name: "dead mid-body", mode: "stall", idle: time.Hour, dead: true, wantWhy: "gossip reports node n2 dead"},
		{name: "dead before its header", mode: "noheader", idle: time.Hour, dead: true, wantWhy: "gossip reports node n2 dead"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := &fakePeer{has: map[string]bool{ref: true}, mode: tc.mode}
			second := &fakePeer{has: map[string]bool{ref: true}}
			peers := []imagePeer{{Node: "n2", Base: first.server(t).URL}, {Node: "n3", Base: second.server(t).URL}}
			var mu sync.Mutex
			var sources []string
			var logs bytes.Buffer
			pi := &peerImages{peers: func(string) []imagePeer { return peers }, client: &http.Client{}, secret: func() string { return testPeerSecret },
				engine: &fakeEngine{images: map[string]bool{}}, idle: tc.idle, aliveCheck: 20 * time.Millisecond,
				alive: func(node string) bool {
					mu.Lock()
					defer mu.Unlock()
					return !(tc.dead && node == "n2" && (len(sources) > 0 || tc.mode == "noheader"))
				},
				log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t0 := time.Now()
			from, err := pi.fetch(ctx, ref, func(node string, _ int64) {
				mu.Lock()
				defer mu.Unlock()
				if len(sources) == 0 || sources[len(sources)-1] != node {
					sources = append(sources, node)
				}
			})
			took := time.Since(t0)
			if err != nil || from != "n3" {
				t.Fatalf("from %q, %v; want n3", from, err)
			}
			if took > 10*time.Second {
				t.Errorf("the next peer was asked after %s, want promptly", took)
			}
			want := []string{"n2", "n3"}
			if tc.mode == "noheader" {
				want = []string{"n3"}
			}
			if !slices.Equal(sources, want) {
				t.Errorf("progress from %v, want %v", sources, want)
			}
			if !strings.Contains(logs.String(), tc.wantWhy) {
				t.Errorf("the log does not say why n2 was abandoned (%q):\n%s", tc.wantWhy, logs.String())
			}
		})
	}
}

// pullingEngine is fakeEngine with a registry: pull adds the image unless pullErr.
type pullingEngine struct {
	*fakeEngine
	pulls   int
	pullErr error
}

func (e *pullingEngine) PullImage(_ context.Context, ref string, _ func(docker.PullProgress)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pulls++
	if e.pullErr != nil {
		return e.pullErr
	}
	e.images[ref] = true
	return nil
}

// The pull order on request (ctl image pull): an image the engine has is "local" and asks
// nobody; else a peer gives it (named, with the bytes); else the registry; both failing is the
// registry's error with what the peers said.
func TestFetchOnRequest(t *testing.T) {
	const ref = "constellation-test/app:7"
	ctx := context.Background()
	holder := &fakePeer{has: map[string]bool{ref: true}}
	empty := &fakePeer{}
	newFetch := func(eng *pullingEngine, peers ...*fakePeer) func(context.Context, string) (string, int64, error) {
		var ips []imagePeer
		for i, p := range peers {
			ips = append(ips, imagePeer{Node: fmt.Sprintf("n%d", i+2), Base: p.server(t).URL})
		}
		return fetchOnRequest(eng, &peerImages{peers: func(string) []imagePeer { return ips }, client: &http.Client{},
			secret: func() string { return testPeerSecret }, engine: eng, log: slog.New(slog.DiscardHandler)})
	}

	eng := &pullingEngine{fakeEngine: &fakeEngine{images: map[string]bool{ref: true}}}
	if from, _, err := newFetch(eng, holder)(ctx, ref); err != nil || from != "local" || holder.hits != 0 {
		t.Fatalf("an image the engine has: from %q, %v, %d peer requests", from, err, holder.hits)
	}
	eng = &pullingEngine{fakeEngine: &fakeEngine{images: map[string]bool{}}}
	if from, n, err := newFetch(eng, empty, holder)(ctx, ref); err != nil || from != "n3" || n != int64(len(imageTar(t, ref))) || eng.pulls != 0 {
		t.Fatalf("from a peer: from %q, %d bytes, %v, %d registry pulls", from, n, err, eng.pulls)
	}
	eng = &pullingEngine{fakeEngine: &fakeEngine{images: map[string]bool{}}}
	if from, _, err := newFetch(eng, empty)(ctx, ref); err != nil || from != "registry" || eng.pulls != 1 {
		t.Fatalf("from the registry: from %q, %v, %d registry pulls", from, err, eng.pulls)
	}
	eng = &pullingEngine{fakeEngine: &fakeEngine{images: map[string]bool{}}, pullErr: fmt.Errorf("pull: %w", docker.ErrImageNotFound)}
	_, _, err := newFetch(eng, empty)(ctx, ref)
	if !errors.Is(err, docker.ErrImageNotFound) || !strings.Contains(err.Error(), "n2: has no such image") {
		t.Fatalf("nobody has it: %v, want the registry's not-found with the peers' answers", err)
	}
}
