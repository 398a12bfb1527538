package nodelocal

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// fakeImageEngine saves one archive of size bytes for any ref; the rest of Docker is not
// used by the save route (nil: a call panics).
type fakeImageEngine struct {
	Docker
	archive []byte
}

func (f *fakeImageEngine) Images(context.Context) ([]docker.Image, error)  { return nil, nil }
func (f *fakeImageEngine) ImageID(context.Context, string) (string, error) { return "sha256:x", nil }
func (f *fakeImageEngine) LoadImage(context.Context, io.Reader) (docker.LoadResult, error) {
	return docker.LoadResult{}, nil
}
func (f *fakeImageEngine) SaveImage(_ context.Context, _ string, w io.Writer) (int64, error) {
	// Like the engine's stream: many writes of 32 KiB.
	n, err := io.CopyBuffer(w, bytes.NewReader(f.archive), make([]byte, 32<<10))
	return n, err
}

func newSaveServer(t *testing.T, sendRate int64, size int) *httptest.Server {
	t.Helper()
	s, err := New(Config{Node: "n1", Docker: &fakeImageEngine{archive: bytes.Repeat([]byte{7}, size)}, SendRate: sendRate,
		Services: func(context.Context) ([]*v1.Service, error) { return nil, nil },
		Peer:     func(context.Context, string) (string, error) { return "", nil },
		Logger:   slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(s.imageSave))
	t.Cleanup(srv.Close)
	return srv
}

func getArchive(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "?ref=x:1")
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Trailer.Get("X-Constellation-Error") != "" {
		t.Errorf("save: %s, %v, trailer %q", resp.Status, err, resp.Trailer.Get("X-Constellation-Error"))
	}
	return len(b)
}

// TestSendRate: --images.sendRate paces the archives a node sends, all of them together: two
// saves of 300 kB at once at 1 MB/s take at least 0.6 s less the limiter's burst (50 kB), and
// every byte arrives. Unlimited (0) has no limiter.
func TestSendRate(t *testing.T) {
	if newSendLimiter(0) != nil {
		t.Fatal("sendRate 0 must be unlimited (no limiter)")
	}
	for rate, burst := range map[int64]int{1: 1, 1000: 50, 1_000_000: 50_000, 100_000_000: 64 << 10} {
		if got := newSendLimiter(rate).Burst(); got != burst {
			t.Errorf("sendRate %d: burst %d, want %d", rate, got, burst)
		}
	}
	const size = 300_000
	srv := newSaveServer(t, 1_000_000, size)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if n := getArchive(t, srv.URL); n != size {
				t.Errorf("received %d bytes, want %d", n, size)
			}
		})
	}
	wg.Wait()
	if took, min := time.Since(t0), 500*time.Millisecond; took < min {
		t.Errorf("2 × %d bytes at 1 MB/s took %s, want at least %s (the rate is shared)", size, took, min)
	}
	t.Logf("2 × %d bytes at 1 MB/s: %s", size, time.Since(t0).Round(time.Millisecond))
}

// TestSendRateStopsWithTheReceiver: a receiver that goes away ends a paced save instead of
// leaving it waiting for tokens.
func TestSendRateStopsWithTheReceiver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	lim := newSendLimiter(1000) // 50 bytes at a time, 20 writes a second
	pw := &pacedWriter{ctx: ctx, w: io.Discard, lim: lim}
	done := make(chan error, 1)
	go func() { _, err := pw.Write(make([]byte, 1_000_000)); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled paced write returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a paced write went on after its context ended")
	}
}
