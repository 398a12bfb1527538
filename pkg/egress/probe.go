package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Dialer opens a connection for the probe: from the gateway's namespace (NetnsDialer) or the
// agent's own (net.Dialer).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Target says how to reach the egress of one gateway replica.
type Target struct {
	// Dial, when set, dials from inside the gateway's network namespace (via "namespace").
	Dial Dialer
	// Proxy, when set, is the gateway's proxy (socks5://ip:port or http://ip:port), dialled from
	// the agent's namespace (via "socks5:<port>" / "http:<port>"), or with Dial from the
	// gateway's ("namespace+socks5:<port>").
	Proxy *url.URL
}

// Result is the outcome of one probe.
type Result struct {
	OK bool
	// Summary is what EgressHealthy and the replica's message show: "ok: warp=on, 4210 bytes",
	// "warp=off (expected warp=(on|plus))", "timeout after 5s", "short body: 512 < 4096 bytes".
	Summary string
	Bytes   int64
	Took    time.Duration
}

// maxBody bounds what a probe reads: enough for minBytes checks, never a download.
const maxBody = 1 << 20

// Probe runs check (defaulted) once against target. It never returns an error: a failure is
// a Result with OK false and a summary saying what failed.
func Probe(ctx context.Context, check v1.EgressCheck, target Target, now func() time.Time) Result {
	start := now()
	timeout := check.Timeout.Duration
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: false, TLSHandshakeTimeout: timeout}
	if target.Proxy != nil {
		tr.Proxy = http.ProxyURL(target.Proxy)
	}
	if target.Dial != nil {
		// With a proxy too, the proxy is dialled from the namespace.
		tr.DialContext = target.Dial
	}
	defer tr.CloseIdleConnections()
	res := Result{}
	fail := func(format string, args ...any) Result {
		res.OK, res.Summary, res.Took = false, fmt.Sprintf(format, args...), now().Sub(start)
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, check.URL, nil)
	if err != nil {
		return fail("bad url: %v", err)
	}
	req.Header.Set("User-Agent", "constellation-egress-check")
	resp, err := (&http.Client{Transport: tr, Timeout: timeout}).Do(req)
	if err != nil {
		if isTimeout(ctx, err) {
			return fail("timeout after %s: %s", timeout, shortErr(err))
		}
		return fail("request failed: %s", shortErr(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res.Bytes = int64(len(body))
	if err != nil {
		if isTimeout(ctx, err) {
			return fail("timeout after %s reading the body (%d bytes read)", timeout, len(body))
		}
		return fail("body cut after %d bytes: %s", len(body), shortErr(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("HTTP %d", resp.StatusCode)
	}
	if res.Bytes < check.MinBytes {
		return fail("short body: %d < %d bytes", res.Bytes, check.MinBytes)
	}
	if check.Expect != "" {
		re, err := regexp.Compile(check.Expect)
		if err != nil {
			return fail("bad expect: %v", err)
		}
		if !re.Match(body) {
			if kv := keyLine(check.Expect, body); kv != "" {
				return fail("%s (expected %s)", kv, check.Expect)
			}
			return fail("body does not match %s", check.Expect)
		}
	}
	res.OK, res.Took = true, now().Sub(start)
	res.Summary = fmt.Sprintf("ok: %d bytes", res.Bytes)
	if kv := keyLine(check.Expect, body); kv != "" {
		res.Summary = fmt.Sprintf("ok: %s, %d bytes", kv, res.Bytes)
	}
	return res
}

var keyRE = regexp.MustCompile(`^\^?([A-Za-z0-9_.-]+)=`)

// keyLine returns the "key=value" line of body whose key starts expect ("warp=(on|plus)" →
// the "warp=..." line of a /cdn-cgi/trace answer), or "".
func keyLine(expect string, body []byte) string {
	m := keyRE.FindStringSubmatch(expect)
	if m == nil {
		return ""
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, m[1]+"=") {
			return strings.TrimSpace(line)
		}
	}
	return m[1] + " missing"
}

func isTimeout(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout())
}

// shortErr drops the request line Go puts in front of transport errors.
func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
