// Request/response latency: TCP echo and HTTP requests, released by an open-loop schedule at a
// fixed rate over a pool of connections.

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// requester does one request on a connection it owns (with its reader).
type requester func(c net.Conn, r *bufio.Reader) error

func echoReq(size int) requester {
	return func(c net.Conn, r *bufio.Reader) error {
		buf := make([]byte, size)
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(r, buf)
		return err
	}
}

var httpGet = []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")

func httpReq(c net.Conn, r *bufio.Reader) error {
	if _, err := c.Write(httpGet); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

type latency struct {
	n, errors int
	p50, p99  time.Duration
}

// openLoop releases rate requests per second for d, whatever the answers do; conns workers
// each own a connection and take the next released request.
func openLoop(addr string, req requester, rate int, d time.Duration, conns int) (latency, error) {
	type worker struct {
		c net.Conn
		r *bufio.Reader
	}
	var ws []worker
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return latency{}, err
		}
		defer c.Close()
		ws = append(ws, worker{c, bufio.NewReader(c)})
	}
	// Warm up each connection.
	for _, w := range ws {
		if err := req(w.c, w.r); err != nil {
			return latency{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	total := int(float64(rate) * d.Seconds())
	released := make(chan time.Time, total)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	errs := 0
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range released {
				err := req(w.c, w.r)
				took := time.Since(at)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					lat = append(lat, took)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		released <- time.Now()
	}
	close(released)
	wg.Wait()
	slices.Sort(lat)
	out := latency{n: len(lat) + errs, errors: errs}
	if len(lat) > 0 {
		out.p50 = lat[len(lat)*50/100]
		out.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return out, nil
}
