// Command fake-cloudflare serves the fake Cloudflare API v4 (test/fakes/cloudflare) as a process,
// for end-to-end tests whose agents run elsewhere (containers). Control it through /_fake/ (see
// cloudflare.AdminPrefix). It is a test tool: never point a real token at it.
//
//	fake-cloudflare -listen 127.0.0.1:8787 -token-file token -zone example.com
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:8787", "address to listen on")
	tokenFile := flag.String("token-file", "", "file holding the accepted API token")
	var tokens, zones list
	flag.Var(&tokens, "token", "an accepted API token (repeatable; prefer -token-file)")
	flag.Var(&zones, "zone", "a zone to create (repeatable)")
	flag.Parse()
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Fatalf("fake-cloudflare: %v", err)
		}
		tokens = append(tokens, strings.TrimSpace(string(b)))
	}
	if len(tokens) == 0 {
		log.Fatal("fake-cloudflare: give -token-file or -token")
	}
	s := fake.New()
	for _, t := range tokens {
		s.AddToken(t)
	}
	for _, z := range zones {
		s.AddZone(z)
	}
	url, stop, err := s.Listen(*listen)
	if err != nil {
		log.Fatalf("fake-cloudflare: %v", err)
	}
	fmt.Println(url)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	<-ctx.Done()
	_ = stop()
}
