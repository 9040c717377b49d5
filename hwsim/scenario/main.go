package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// Main is `hwsim demo`: it runs the scripted campus day from the real
// binaries and prints the timeline, the balances and the ledger check.
// With --live the campus stays up afterwards so a person can drive the
// devices with `hwsim ctl`. It returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hwsim demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exe, _ := os.Executable()
	bin := fs.String("bin", filepath.Dir(exe), "folder with the authorizer and terminald `binaries`")
	dir := fs.String("dir", "", "campus `folder` (default: a new folder under demo-data/)")
	live := fs.Bool("live", false, "stay up after the day so you can drive the devices with `hwsim ctl`")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up on the scripted day after this `long`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hwsim demo [--bin DIR] [--dir DIR] [--live]\n\nRuns a whole simulated campus: the authorizer with its embedded broker,\nthe bank and WeChat Pay simulators, and three real terminald processes\n(a canteen POS with a camera, a shop till with a serial barcode scanner,\na card-tap box with a PN532 reader, a Yungu shower with a Modbus valve), then a scripted day that exercises every\nwallet rule and fallback.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" {
		*dir = filepath.Join("demo-data", time.Now().Format("20060102-150405"))
	}
	abs, _ := filepath.Abs(*dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "campus folder: %s (logs of every process are there)\n\n", abs)
	dayCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	c, err := Day(dayCtx, Options{Bin: *bin, Dir: abs, Out: stdout})
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "\ndemo: %v\n", err)
		return 1
	}
	code := 0
	if err := c.Summary(ctx); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		code = 1
	}
	fmt.Fprintf(stdout, "\nthe day took %.1fs\n", time.Since(start).Seconds())
	if *live {
		fmt.Fprintf(stdout, "\nlive: the campus stays up until ^C.\n  API (web wallet): %s\n  control:          export HWSIM_CTL=%s\n", c.API, c.ControlURL)
		for _, id := range []string{posID, shopID, cardID, showerID} {
			b := c.Boxes[id]
			fmt.Fprintf(stdout, "  %-12s display %s  status %s\n", id, b.DisplayURL, b.StatusURL)
		}
		fmt.Fprintln(stdout, "  e.g. hwsim ctl key T-POS-01 '12.50\\n'; hwsim ctl tap T-CARD-01 04A1B2C3D4E502; hwsim ctl net T-POS-01 cut")
		<-ctx.Done()
	}
	return code
}
