// Command terminald is the campus payment terminal daemon: see package
// campuspay/terminal/daemon.
//
//	terminald --config /etc/terminald/canteen-01.json
package main

import (
	"os"

	"campuspay/terminal/daemon"
)

func main() { os.Exit(daemon.Command(os.Args[1:], os.Stdout, os.Stderr)) }
