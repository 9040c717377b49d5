package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"campuspay/hwsim/bank"
	"campuspay/hwsim/camera"
	"campuspay/hwsim/wechat"
)

// flags makes a subcommand's flag set; its usage goes to stderr.
func flags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hwsim "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hwsim %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; done is true when the command must return code
// (after --help: 0, after a bad flag: 2).
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "hwsim %s: %v\n", cmd, err)
	return 1
}

// ready prints the line scripts wait for, then blocks until a signal.
func ready(ctx context.Context, stdout io.Writer, what, url string) {
	fmt.Fprintf(stdout, "%s: serving on %s\n", what, url)
	<-ctx.Done()
}

func runBank(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("bank", "bank [flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	accounts := fs.String("accounts", "", "accounts fixture (.csv or .json); see hwsim/bank")
	banks := fs.String("banks", "", "comma-separated bank codes served (default: "+strings.Join(bank.DefaultBanks, ",")+")")
	var clients listFlag
	fs.Var(&clients, "client", "client `ID=SECRET` allowed to call the gateway (repeatable, at least one)")
	if code, done := parse(fs, args); done {
		return code
	}
	if len(clients) == 0 {
		fmt.Fprintln(stderr, "hwsim bank: at least one --client ID=SECRET is required")
		return 2
	}
	cfg := bank.Config{Clients: map[string]string{}}
	for _, c := range clients {
		id, secret, ok := strings.Cut(c, "=")
		if !ok || id == "" || secret == "" {
			fmt.Fprintf(stderr, "hwsim bank: --client %q: want ID=SECRET\n", c)
			return 2
		}
		cfg.Clients[id] = secret
	}
	if *banks != "" {
		cfg.Banks = strings.Split(*banks, ",")
	}
	if *accounts != "" {
		a, err := bank.LoadAccounts(*accounts)
		if err != nil {
			return fail(stderr, "bank", err)
		}
		cfg.Accounts = a
	}
	sim, err := bank.New(cfg)
	if err != nil {
		return fail(stderr, "bank", err)
	}
	url, err := sim.Start(*addr)
	if err != nil {
		return fail(stderr, "bank", err)
	}
	defer sim.Close()
	ready(ctx, stdout, "bank", url)
	return 0
}

func runWeChat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("wechat", "wechat [flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	users := fs.String("users", "", "users fixture (JSON array of {openid, balance, needs_password, auto_confirm_after})")
	var cfg wechat.Config
	fs.StringVar(&cfg.AppID, "appid", "", "merchant's app id")
	fs.StringVar(&cfg.MchID, "mchid", "", "merchant id")
	fs.StringVar(&cfg.APIKey, "apikey", "", "merchant's API key (signs requests)")
	fs.StringVar(&cfg.MiniAppID, "mini-appid", "", "mini-program app id (default: --appid)")
	fs.StringVar(&cfg.MiniSecret, "mini-secret", "", "mini-program secret")
	fs.DurationVar(&cfg.CodeTTL, "code-ttl", 0, "payment code validity (default 60s)")
	if code, done := parse(fs, args); done {
		return code
	}
	if cfg.AppID == "" || cfg.MchID == "" || cfg.APIKey == "" {
		fmt.Fprintln(stderr, "hwsim wechat: --appid, --mchid and --apikey are required")
		return 2
	}
	sim := wechat.New(cfg)
	if *users != "" {
		us, err := wechat.LoadUsers(*users)
		if err != nil {
			return fail(stderr, "wechat", err)
		}
		for _, u := range us {
			if err := sim.CreateUser(u); err != nil {
				return fail(stderr, "wechat", err)
			}
		}
	}
	url, err := sim.Start(*addr)
	if err != nil {
		return fail(stderr, "wechat", err)
	}
	defer sim.Close()
	ready(ctx, stdout, "wechat", url)
	return 0
}

func cameraFlags(fs *flag.FlagSet, o *camera.Options) {
	fs.IntVar(&o.Width, "width", 640, "frame width")
	fs.IntVar(&o.Height, "height", 480, "frame height")
	fs.IntVar(&o.FPS, "fps", 10, "frames per second")
	fs.Float64Var(&o.Blur, "blur", 0, "Gaussian blur sigma in pixels")
	fs.Float64Var(&o.Tilt, "tilt", 0, "phone turned this many degrees")
	fs.Float64Var(&o.Rotate, "rotate", 0, "in-plane rotation in degrees")
	fs.Float64Var(&o.Noise, "noise", 0, "sensor noise (grey levels)")
	fs.Float64Var(&o.Glare, "glare", 0, "screen glare 0..1")
	fs.Uint64Var(&o.Seed, "seed", 0, "noise and shake seed")
}

func runCamera(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("camera", "camera [flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address of the MJPEG stream")
	text := fs.String("text", "", "text shown as a QR code on the phone (empty: an empty desk)")
	var o camera.Options
	cameraFlags(fs, &o)
	if code, done := parse(fs, args); done {
		return code
	}
	cam, err := camera.New(o)
	if err != nil {
		return fail(stderr, "camera", err)
	}
	defer cam.Close()
	if *text != "" {
		if err := cam.Show(*text); err != nil {
			return fail(stderr, "camera", err)
		}
	}
	url, err := cam.Serve(*addr)
	if err != nil {
		return fail(stderr, "camera", err)
	}
	ready(ctx, stdout, "camera", url)
	return 0
}
