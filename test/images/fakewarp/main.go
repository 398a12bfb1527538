// Command fakewarp is a fake Cloudflare WARP container for tests: a SOCKS5 and HTTP proxy on
// PROXY_LISTEN (default :1080, like caomingjun/warp's gost) whose "tunnel" sends every
// connection to TUNNEL (host:port of test/images/fakenet's tunnel port, where it is answered
// with warp=on). A control endpoint on CONTROL_LISTEN (default :1081) breaks it the ways WARP
// breaks in the wild:
//
//	POST /mode?set=on           connected (the default, and what a restart comes back to)
//	POST /mode?set=off          silently disconnected: connections go out directly (warp=off, a leak)
//	POST /mode?set=broken       tunnel up, no traffic passes: connections hang
//	POST /mode?set=mtu          a PMTU black hole: the first 1400 bytes of an answer pass, then nothing
//	POST /mode?set=unreachable  the proxy refuses connections from outside its namespace; 127.0.0.1 works
//
// &sticky=1 makes the reconnect hook (fakewarp -reconnect) fail: only a restart heals.
// MODE sets the mode at start (default on).
//
// fakewarp -reconnect sets the mode to "on" through the control endpoint (the warp-cli connect
// of the real image), failing if the mode is sticky. fakewarp -client URL fetches URL through
// socks5://127.0.0.1:1080 every -every (default 200ms) with header X-From: $FROM: the
// workload of a container sharing the gateway's namespace.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	mu     sync.Mutex
	mode   = "on"
	sticky bool
)

func getMode() string {
	mu.Lock()
	defer mu.Unlock()
	return mode
}

func main() {
	reconnect := flag.Bool("reconnect", false, "set the mode to on through the control endpoint")
	client := flag.String("client", "", "fetch this URL through the proxy forever")
	every := flag.Duration("every", 200*time.Millisecond, "client interval")
	flag.Parse()
	ctl := env("CONTROL_LISTEN", ":1081")
	switch {
	case *reconnect:
		os.Exit(doReconnect(ctl))
	case *client != "":
		runClient(*client, *every)
		return
	}
	if m := os.Getenv("MODE"); m != "" {
		mode = m
	}
	tunnel := os.Getenv("TUNNEL")
	go func() { log.Fatal(http.ListenAndServe(ctl, http.HandlerFunc(control))) }()
	ln, err := net.Listen("tcp", env("PROXY_LISTEN", ":1080"))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("fakewarp: proxy %s, tunnel %s, control %s, mode %s", ln.Addr(), tunnel, ctl, mode)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c, tunnel)
	}
}

func control(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/mode" {
		set := r.URL.Query().Get("set")
		switch set {
		case "on", "off", "broken", "mtu", "unreachable":
		default:
			http.Error(w, "unknown mode "+set, 400)
			return
		}
		mu.Lock()
		if set == "on" && sticky && r.URL.Query().Get("reconnect") == "1" {
			mu.Unlock()
			http.Error(w, "reconnect failed: Disconnected. Reason: Manual Disconnection", 409)
			return
		}
		mode, sticky = set, r.URL.Query().Get("sticky") == "1"
		mu.Unlock()
		log.Printf("fakewarp: mode %s (sticky %v)", set, sticky)
	}
	fmt.Fprintln(w, getMode())
}

func doReconnect(ctl string) int {
	_, port, _ := net.SplitHostPort(ctl)
	resp, err := http.Post("http://127.0.0.1:"+port+"/mode?set=on&reconnect=1", "", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Print(string(b))
	if resp.StatusCode != 200 {
		return 1
	}
	return 0
}

// serve speaks SOCKS5 (first byte 5) or HTTP proxy (CONNECT or an absolute URI).
func serve(c net.Conn, tunnel string) {
	defer c.Close()
	m := getMode()
	if m == "unreachable" {
		if ip, _, _ := net.SplitHostPort(c.RemoteAddr().String()); !net.ParseIP(ip).IsLoopback() {
			return // WARP captured incoming traffic: nothing answers from outside
		}
	}
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	var dest string
	var reply func(ok bool)
	var pending []byte // bytes of the request already read (HTTP absolute-URI form)
	if first[0] == 5 {
		dest, err = socksHandshake(br, c)
		if err != nil {
			return
		}
		reply = func(ok bool) {
			code := byte(0)
			if !ok {
				code = 5
			}
			_, _ = c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
		}
	} else {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Method == http.MethodConnect {
			dest = req.Host
			reply = func(ok bool) {
				if ok {
					_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				} else {
					_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				}
			}
		} else {
			dest = req.URL.Host
			if !strings.Contains(dest, ":") {
				dest += ":80"
			}
			req.RequestURI = ""
			req.Header.Del("Proxy-Connection")
			var sb strings.Builder
			_ = req.Write(&sb)
			pending = []byte(sb.String())
			reply = func(ok bool) {
				if !ok {
					_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				}
			}
		}
	}
	switch m {
	case "broken":
		// Tunnel "up", nothing passes: accept and hang until the client gives up.
		reply(true)
		_, _ = io.Copy(io.Discard, br)
		return
	case "off":
		// Disconnected: traffic leaves through the container's normal route (a leak).
	default:
		if tunnel != "" {
			dest = tunnel
		}
	}
	up, err := net.DialTimeout("tcp", dest, 5*time.Second)
	if err != nil {
		reply(false)
		return
	}
	defer up.Close()
	reply(true)
	if len(pending) > 0 {
		_, _ = up.Write(pending)
	}
	clientDone := make(chan struct{})
	go func() { _, _ = io.Copy(up, br); close(clientDone) }()
	if m == "mtu" {
		// The first packets pass, the large ones vanish: the answer stalls until the client
		// gives up (a black hole, not a reset).
		_, _ = io.CopyN(c, up, 1400)
		<-clientDone
		return
	}
	_, _ = io.Copy(c, up)
}

func socksHandshake(br *bufio.Reader, c net.Conn) (string, error) {
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return "", err
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return "", err
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(br, req); err != nil {
		return "", err
	}
	if req[1] != 1 {
		return "", errors.New("only CONNECT")
	}
	var host string
	switch req[3] {
	case 1:
		b := make([]byte, 4)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		host = net.IP(b).String()
	case 3:
		l, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		host = string(b)
	case 4:
		b := make([]byte, 16)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		host = net.IP(b).String()
	default:
		return "", errors.New("bad address type")
	}
	pb := make([]byte, 2)
	if _, err := io.ReadFull(br, pb); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb)))), nil
}

func runClient(target string, every time.Duration) {
	proxy, _ := url.Parse("socks5://127.0.0.1:1080")
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}}
	from := os.Getenv("FROM")
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		req.Header.Set("X-From", from)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		time.Sleep(every)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
