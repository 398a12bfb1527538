package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "badspec: cannot build the stack: missing IMAGE")
	os.Exit(3)
}
