// Command tool is the test image of ctl logs, exec and volume (FROM scratch has no shell):
//
//	tool serve            prints "out N" to stdout and "err N" to stderr every $INTERVAL (default
//	                      200ms) until SIGTERM; $LINES>0 stops after that many of each and sleeps
//	tool cat              copies stdin to stdout
//	tool say TEXT [CODE]  prints TEXT to stdout and "stderr:TEXT" to stderr, exits CODE
//	tool ttysize          prints "ROWS COLS" of the terminal on stdin, or "notty"
//	tool waitsize R C     prints the size every 50ms until it is R C (resize tests), then exits 0
//	tool read PATH        prints the file
//	tool write PATH TEXT  writes the file (and its directory)
//	tool burn MIB         keeps one CPU busy and MIB MiB of memory resident until killed (ctl top)
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/term"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool serve|cat|say|ttysize|waitsize|read|write")
		os.Exit(2)
	}
	switch args := os.Args[2:]; os.Args[1] {
	case "serve":
		serve()
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "say":
		fmt.Println(args[0])
		fmt.Fprintln(os.Stderr, "stderr:"+args[0])
		if len(args) > 1 {
			code, _ := strconv.Atoi(args[1])
			os.Exit(code)
		}
	case "ttysize":
		fmt.Println(size())
	case "waitsize":
		want := args[0] + " " + args[1]
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			s := size()
			fmt.Print(s + "\r\n")
			if s == want {
				return
			}
		}
		os.Exit(1)
	case "read":
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "write":
		_ = os.MkdirAll(filepath.Dir(args[0]), 0o755)
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "burn":
		burn(args[0])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func size() string {
	w, h, err := term.GetSize(0)
	if err != nil {
		return "notty"
	}
	return fmt.Sprintf("%d %d", h, w)
}

func serve() {
	interval := 200 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("INTERVAL")); err == nil {
		interval = d
	}
	limit, _ := strconv.Atoi(os.Getenv("LINES"))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(interval)
	for n := 1; ; n++ {
		if limit <= 0 || n <= limit {
			fmt.Printf("out %d\n", n)
			fmt.Fprintf(os.Stderr, "err %d\n", n)
		}
		select {
		case <-sig:
			return
		case <-t.C:
		}
	}
}

// burn holds mib MiB resident (every page written) and spins one CPU until killed.
func burn(mib string) {
	n, err := strconv.Atoi(mib)
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "burn: MIB must be a number")
		os.Exit(2)
	}
	held := make([]byte, n<<20)
	for i := range held {
		held[i] = byte(i)
	}
	fmt.Println("burning")
	x := 0
	for {
		for i := 0; i < len(held); i += 4096 {
			x += int(held[i])
		}
		if x == -1 {
			fmt.Println(x) // keeps the loop from being optimised away
		}
	}
}
