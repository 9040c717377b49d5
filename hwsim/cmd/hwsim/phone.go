package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"campuspay/hwsim/phone"
	"campuspay/protocol"
)

const phoneUsage = `Usage: hwsim phone --api URL --student NO [--password PW] COMMAND ARGS

Each run is a fresh phone: it logs in, and commands that make codes register
a new device key first.

Commands:
  code                         print a fresh payment code
  identity                     print a fresh identity code
  wallet                       print the wallet (JSON)
  bind BANK CARD_NUMBER        bind a bank card (holder details from the roster)
  unbind                       unbind the bank card (--pay PW)
  topup YUAN | withdraw YUAN   move money from / to the bound card (withdraw: --pay PW)
  sign | unsign                sign / end the password-free contract (--pay PW)
  payment-password PW          set the payment password (--old for a change)
  water-password PW            set the water password (--old for a change)
  scanpay QR YUAN PAYMENT_PW   pay a terminal's static merchant QR
  link-wechat LOGIN_CODE       complete the WeChat mini-program authentication
  transactions                 list the newest transactions

Flags:
`

func runPhone(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hwsim phone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", os.Getenv("HWSIM_API"), "authorizer base URL (env HWSIM_API)")
	student := fs.String("student", "", "student number")
	password := fs.String("password", "", "login password (default env HWSIM_PHONE_PASSWORD)")
	old := fs.String("old", "", "old password, when changing one")
	pay := fs.String("pay", "", "payment password confirming unbind, withdraw, sign and unsign")
	timeout := fs.Duration("timeout", 30*time.Second, "overall timeout")
	fs.Usage = func() {
		fmt.Fprint(stderr, phoneUsage)
		fs.PrintDefaults()
	}
	if code, done := parse(fs, args); done {
		return code
	}
	if *password == "" {
		*password = os.Getenv("HWSIM_PHONE_PASSWORD")
	}
	if *api == "" || *student == "" || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p := phone.New(*api, *student, *password)
	p.UsePaymentPassword(*pay)
	cmd, a := fs.Arg(0), fs.Args()[1:]
	nargs := map[string]int{"code": 0, "identity": 0, "wallet": 0, "bind": 2, "unbind": 0, "topup": 1, "withdraw": 1,
		"sign": 0, "unsign": 0, "payment-password": 1, "water-password": 1, "scanpay": 3, "link-wechat": 1, "transactions": 0}
	n, known := nargs[cmd]
	if !known {
		fmt.Fprintf(stderr, "hwsim phone: unknown command %q (run hwsim phone --help)\n", cmd)
		return 2
	}
	if len(a) != n {
		fmt.Fprintf(stderr, "hwsim phone %s: want %d argument(s), got %d\n", cmd, n, len(a))
		return 2
	}
	yuan := func(s string) (int64, bool) {
		c, err := protocol.ParseYuan(s)
		if err != nil {
			fmt.Fprintf(stderr, "hwsim phone %s: amount %q: %v\n", cmd, s, err)
			return 0, false
		}
		return c, true
	}
	if err := p.Login(ctx); err != nil {
		return phoneFail(stderr, cmd, err)
	}

	var (
		out any
		err error
	)
	switch cmd {
	case "code", "identity":
		if _, err := p.RegisterDevice(ctx); err != nil {
			return phoneFail(stderr, cmd, err)
		}
		var text string
		if cmd == "code" {
			text, err = p.Code()
		} else {
			text, err = p.IdentityCode(time.Now())
		}
		if err != nil {
			return phoneFail(stderr, cmd, err)
		}
		fmt.Fprintln(stdout, text)
		return 0
	case "wallet":
		out, err = p.Wallet(ctx)
	case "bind":
		out, err = p.BindCard(ctx, phone.BankCard{BankCode: a[0], CardNumber: a[1]})
	case "unbind":
		out, err = p.Unbind(ctx)
	case "topup", "withdraw":
		c, ok := yuan(a[0])
		if !ok {
			return 2
		}
		if cmd == "topup" {
			out, err = p.TopUp(ctx, c)
		} else {
			out, err = p.Withdraw(ctx, c)
		}
	case "sign":
		out, err = p.SignPasswordFree(ctx)
	case "unsign":
		out, err = p.Unsign(ctx)
	case "payment-password":
		out, err = p.SetPaymentPassword(ctx, *old, a[0])
	case "water-password":
		out, err = p.SetWaterPassword(ctx, *old, a[0])
	case "scanpay":
		c, ok := yuan(a[1])
		if !ok {
			return 2
		}
		out, err = p.ScanPay(ctx, a[0], c, a[2])
	case "link-wechat":
		out, err = p.LinkWeChat(ctx, a[0])
	case "transactions":
		txs, err := p.Transactions(ctx)
		if err != nil {
			return phoneFail(stderr, cmd, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tKIND\tAMOUNT\tCHANNEL\tSTATUS\tMERCHANT\tTERMINAL\tCODE")
		for _, t := range txs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Time.Format(time.DateTime), t.Kind,
				protocol.FormatCents(t.Amount), t.Channel, t.Status, t.MerchantName, t.Terminal, t.Code)
		}
		tw.Flush()
		return 0
	}
	if err != nil {
		return phoneFail(stderr, cmd, err)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// phoneFail prints a refusal as the app shows it: code and both messages.
func phoneFail(stderr io.Writer, cmd string, err error) int {
	var r *protocol.Reason
	if errors.As(err, &r) {
		fmt.Fprintf(stderr, "hwsim phone %s: %s: %s (%s)\n", cmd, r.Code, r.ZH, r.EN)
		return 1
	}
	return fail(stderr, "phone "+cmd, err)
}
