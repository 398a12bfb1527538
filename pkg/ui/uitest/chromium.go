// Package uitest drives Debian's headless Chromium over the DevTools protocol (chromedp) for the
// status page's tests: load a URL, wait until the DOM the page built holds what the test
// expects, and read it back.
//
// It waits on the page's own state, in real time, instead of dumping the DOM when a virtual
// time budget runs out (chromium --dump-dom --virtual-time-budget): the page fills itself from
// list and watch requests, and on a loaded machine a list could still be in flight when the
// budget expired, so the dump showed an empty table and the test failed though nothing was
// wrong.
package uitest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the chromium binary. When it is missing the test is skipped, or
// fails under CONSTELLATION_TEST_STRICT (make test sets it: hack/chromium.sh installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	if os.Getenv("CONSTELLATION_TEST_STRICT") != "" {
		t.Fatal("chromium is missing: run hack/chromium.sh (make test-deps does)")
	}
	t.Skip("chromium is missing: run hack/chromium.sh to install Debian's chromium")
	return ""
}

// Page is one headless browser tab.
type Page struct {
	ctx context.Context
}

// Open starts headless Chromium (bin, from Chromium) with a fresh profile, a window of
// width x height, and navigates to url. The browser is closed when the test ends.
func Open(t testing.TB, bin, url string, width, height int) *Page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		// Containers often mount a small /dev/shm; Chromium then fails in odd ways.
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first call starts the browser, which lives as long as that call's context: it gets
	// the tab's context, and the timeouts go on the calls after it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: start %s: %v", bin, err)
	}
	nctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("chromium: open %s: %v", url, err)
	}
	return &Page{ctx: ctx}
}

// DOM returns the document's HTML as the page has built it so far.
func (p *Page) DOM() (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
	if err != nil {
		return "", fmt.Errorf("read the DOM: %w", err)
	}
	return html, nil
}

// WaitFor polls the DOM until it contains every one of wants, for up to within. It returns the
// last DOM it read and the wants that were still missing (none when it succeeded).
func (p *Page) WaitFor(within time.Duration, wants ...string) (dom string, missing []string, err error) {
	deadline := time.Now().Add(within)
	for {
		dom, err = p.DOM()
		if err != nil {
			return "", wants, err
		}
		missing = missing[:0]
		for _, w := range wants {
			if !strings.Contains(dom, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return dom, missing, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Expect waits for the DOM to hold every one of wants (within a minute) and fails the test
// naming each one missing, with the DOM as it was.
func (p *Page) Expect(t testing.TB, wants ...string) string {
	t.Helper()
	dom, missing, err := p.WaitFor(time.Minute, wants...)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	for _, w := range missing {
		t.Errorf("DOM lacks %q after a minute", w)
	}
	if len(missing) > 0 {
		t.Logf("DOM:\n%s", dom)
	}
	return dom
}

// Screenshot writes a PNG of the viewport to path.
func (p *Page) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}
