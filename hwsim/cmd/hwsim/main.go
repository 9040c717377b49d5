// Command hwsim simulates a campus's hardware and outside services on one
// machine: the bank and WeChat Pay, virtual cameras, each terminal box's
// serial devices on pseudo-terminals (a "rig") with a control API to tap
// cards, key amounts, show codes, run showers and cut networks, a student's
// phone, and the demo scenario that drives a whole campus.
//
//	hwsim bank    --addr 127.0.0.1:7101 --accounts accounts.csv --client authorizer=SECRET
//	hwsim wechat  --addr 127.0.0.1:7102 --users users.json --apikey KEY ...
//	hwsim camera  --addr 127.0.0.1:7103 --text CW1:...
//	hwsim rig     --terminal T01 --dir /tmp/campus/T01 --card pn532 --scanner --keypad serial --ctl-addr 127.0.0.1:7070
//	hwsim ctl     --addr 127.0.0.1:7070 tap T01 04A1B2C3
//	hwsim phone   --api http://127.0.0.1:8080 --student S --password P code
//	hwsim demo    ...
//	hwsim load    --broker embedded,mosquitto --terminals 100 --students 1000 --concurrency 256
//
// Every subcommand has --help. Servers listen on loopback only and run until
// SIGINT or SIGTERM.
package main

import (
	"campuspay/hwsim/scenario"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `hwsim simulates a campus's hardware and outside services.

Usage: hwsim COMMAND [flags] [args]

Commands:
  bank     serve the bank gateway simulator
  wechat   serve the WeChat Pay simulator
  camera   serve a virtual camera (MJPEG) showing a code
  rig      create one terminal's device twins and serve the control API
  ctl      drive rigs through a control API (tap, key, show, flow, net, status)
  phone    act as a student's wallet app (codes, wallet, top-up, scan-to-pay)
  demo     run the campus demo scenario
  load     size a deployment: payments/s, latency and CPU against an echo baseline

Run "hwsim COMMAND --help" for a command's flags; "hwsim --version" prints the version.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, in-process testable. Exit codes: 0 done,
// 1 failed, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintf(stdout, "hwsim %s\n", version)
		return 0
	case "bank":
		return runBank(ctx, rest, stdout, stderr)
	case "wechat":
		return runWeChat(ctx, rest, stdout, stderr)
	case "camera":
		return runCamera(ctx, rest, stdout, stderr)
	case "rig":
		return runRig(ctx, rest, stdout, stderr)
	case "ctl":
		return runCtl(ctx, rest, stdout, stderr)
	case "phone":
		return runPhone(ctx, rest, stdout, stderr)
	case "demo":
		return scenario.Main(rest, stdout, stderr)
	case "load":
		return runLoad(ctx, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "hwsim: unknown command %q\n\n%s", cmd, usage)
	return 2
}
