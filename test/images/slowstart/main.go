// Command slowstart listens at once on LISTEN (default :8080) but answers /healthz with 503 until
// START_DELAY (default 3s) has passed, then 200: a replica that takes time to become healthy.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := os.Getenv("LISTEN")
	if listen == "" {
		listen = ":8080"
	}
	delay := 3 * time.Second
	if d, err := time.ParseDuration(os.Getenv("START_DELAY")); err == nil {
		delay = d
	}
	ready := time.Now().Add(delay)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if time.Now().Before(ready) {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "slowstart") })
	fmt.Println("slowstart listening on", listen)
	if err := http.ListenAndServe(listen, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
