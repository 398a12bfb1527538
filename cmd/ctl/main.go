// Command ctl is the operator CLI of Constellation. See docs/ctl.md; the logic is in pkg/ctl.
package main

import (
	"os"

	"github.com/constellation-sh/constellation/pkg/ctl"
)

func main() {
	os.Exit(ctl.Main(os.Args[1:], ctl.Env{}))
}
