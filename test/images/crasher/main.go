// Command crasher prints a few log lines and exits with EXIT_CODE (default 3) after DELAY
// (default 100ms): a container that crash-loops.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	code := 3
	if v, err := strconv.Atoi(os.Getenv("EXIT_CODE")); err == nil {
		code = v
	}
	delay := 100 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("DELAY")); err == nil {
		delay = d
	}
	fmt.Println("crasher starting")
	time.Sleep(delay)
	fmt.Fprintf(os.Stderr, "crasher: fatal: giving up with exit code %d\n", code)
	os.Exit(code)
}
