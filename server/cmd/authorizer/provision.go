package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"campuspay/protocol"
	"campuspay/server/broker"
	"campuspay/server/ledger"
	"campuspay/server/wallet"
)

// Load-test provisioning (`authorizer provision`) and the ledger listing
// the load generator reconciles against (`authorizer ledger transfers`).
// `hwsim load` writes a ProvisionPlan, runs provision once, and reads the
// ProvisionResult: the device keys and certificates its simulated phones
// sign codes with, and each terminal's broker password.

// ProvisionPlan is the input of `authorizer provision` (JSON).
type ProvisionPlan struct {
	// Password is the app login password every load student shares (it
	// is hashed once, not once per student).
	Password string `json:"password"`
	Merchant struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Campus string `json:"campus"`
	} `json:"merchant"`
	Terminals  []string          `json:"terminals"` // POS terminal ids at the merchant
	Students   []ProvisionPerson `json:"students"`
	TopUp      int64             `json:"top_up"`       // cents per student, from the bound card
	LimitPerTx int64             `json:"limit_per_tx"` // cents; 0 = config default
	LimitDaily int64             `json:"limit_daily"`  // cents; 0 = config default
}

// ProvisionPerson is one student of a plan, with the card the bank knows.
type ProvisionPerson struct {
	StudentNo string `json:"student_no"`
	Name      string `json:"name"`
	IDNumber  string `json:"id_number"`
	Phone     string `json:"phone"`
	Category  string `json:"category,omitempty"`
	Campus    string `json:"campus"`
	BankCode  string `json:"bank_code"`
	BankCard  string `json:"bank_card"`
}

// ProvisionResult is the output of `authorizer provision` (JSON, mode
// 0600: it holds device private keys and broker passwords).
type ProvisionResult struct {
	Merchant      string              `json:"merchant"`
	AuthTimeoutMS int                 `json:"auth_timeout_ms"`
	Terminals     []ProvisionTerminal `json:"terminals"`
	Students      []ProvisionDevice   `json:"students"`
}

// ProvisionTerminal is a terminal's broker credential.
type ProvisionTerminal struct {
	ID       string `json:"id"`
	Password string `json:"password"`
}

// ProvisionDevice is a student's registered phone.
type ProvisionDevice struct {
	StudentNo   string `json:"student_no"`
	UserID      uint32 `json:"user_id"`
	DeviceID    uint32 `json:"device_id"`
	Certificate []byte `json:"certificate"` // 110 bytes, base64 in JSON
	DeviceKey   []byte `json:"device_key"`  // Ed25519 private key, 64 bytes, base64 in JSON
}

func (c *cli) provision(args []string) int {
	fs := c.newFlags("provision", "provision --plan PLAN.json --out RESULT.json [--workers N]\n\n"+
		"Sets up load-test data in one process: students activated with their card (the\n"+
		"configured bank confirms it), topped up through the ledger, with a registered\n"+
		"device each; a merchant and its POS terminals with broker passwords (also added\n"+
		"to the Mosquitto password entries). Writes device keys, certificates and\n"+
		"passwords to RESULT.json (mode 0600). For load tests only: every student shares\n"+
		"the plan's login password.")
	planPath := fs.String("plan", "", "plan `file` (JSON, see ProvisionPlan)")
	outPath := fs.String("out", "", "result `file` to write (JSON)")
	workers := fs.Int("workers", 32, "students set up concurrently (`N`)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if *planPath == "" || *outPath == "" || *workers < 1 {
		fs.Usage()
		return 2
	}
	raw, err := os.ReadFile(*planPath)
	if err != nil {
		return c.fail(err)
	}
	var plan ProvisionPlan
	if err := json.Unmarshal(raw, &plan); err != nil {
		return c.fail(fmt.Errorf("plan %s: %w", *planPath, err))
	}
	// The bank confirms each binding and debits each top-up.
	c.opts.NoWeChat = true
	m, err := c.openFor(true)
	if err != nil {
		return c.fail(err)
	}
	defer m.Close()
	start := time.Now()
	res, err := provisionAll(c, m, plan, *workers)
	if err != nil {
		return c.fail(err)
	}
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return c.fail(err)
	}
	if err := os.WriteFile(*outPath, b, 0o600); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.out, "provisioned %d students and %d terminals in %.1fs; wrote %s\n",
		len(res.Students), len(res.Terminals), time.Since(start).Seconds(), *outPath)
	return 0
}

func provisionAll(c *cli, m *Main, plan ProvisionPlan, workers int) (*ProvisionResult, error) {
	ctx := c.ctx
	res := &ProvisionResult{Merchant: plan.Merchant.ID, AuthTimeoutMS: m.Config.AuthTimeoutMS,
		Terminals: make([]ProvisionTerminal, len(plan.Terminals)), Students: make([]ProvisionDevice, len(plan.Students))}
	if err := m.Svc.AddMerchant(ctx, wallet.Merchant{ID: plan.Merchant.ID, Name: plan.Merchant.Name, Campus: plan.Merchant.Campus}); err != nil {
		return nil, fmt.Errorf("provision: merchant: %w", err)
	}
	hash, err := m.Svc.HashPassword(plan.Password)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	entries := make([]string, len(plan.Terminals))
	err = parallelDo(workers, len(plan.Terminals), func(i int) error {
		id := plan.Terminals[i]
		pw, err := m.Svc.AddTerminal(ctx, wallet.Terminal{ID: id, Merchant: plan.Merchant.ID, Mode: protocol.ModePOS})
		if err != nil {
			return fmt.Errorf("provision: terminal %s: %w", id, err)
		}
		if entries[i], err = broker.PasswordEntry(id, pw, rand.Reader); err != nil {
			return err
		}
		res.Terminals[i] = ProvisionTerminal{ID: id, Password: pw}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := saveMosquittoEntries(c.common.data, entries); err != nil {
		return nil, err
	}
	err = parallelDo(workers, len(plan.Students), func(i int) error {
		p := plan.Students[i]
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		got, err := m.Svc.ProvisionStudent(ctx, wallet.LoadStudent{
			Roster: wallet.RosterEntry{StudentNo: p.StudentNo, Name: p.Name, IDNumber: p.IDNumber, Phone: p.Phone,
				Category: p.Category, Campus: p.Campus},
			Card:  wallet.BindRequest{BankCode: p.BankCode, CardNumber: p.BankCard},
			TopUp: plan.TopUp, LimitPerTx: plan.LimitPerTx, LimitDaily: plan.LimitDaily, DeviceKey: pub,
		}, hash)
		if err != nil {
			r := protocol.AsReason(err)
			return fmt.Errorf("provision: %s: %w (%s)", p.StudentNo, err, r.EN)
		}
		res.Students[i] = ProvisionDevice{StudentNo: p.StudentNo, UserID: got.UserID, DeviceID: got.Device.DeviceID,
			Certificate: got.Device.Certificate, DeviceKey: priv}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// parallelDo runs f(0..n-1) on at most workers goroutines and returns the
// first error (the others still finish).
func parallelDo(workers, n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// saveMosquittoEntries adds many password-file lines at once (see
// saveMosquittoEntry, which rewrites the file for one).
func saveMosquittoEntries(data string, lines []string) error {
	all, err := readMosquittoEntries(data)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if user, _, ok := strings.Cut(l, ":"); ok {
			all[user] = l
		}
	}
	users := make([]string, 0, len(all))
	for u := range all {
		users = append(users, u)
	}
	sort.Strings(users)
	var b strings.Builder
	for _, u := range users {
		b.WriteString(all[u] + "\n")
	}
	path := filepath.Join(data, mosquittoEntries)
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("mosquitto entries: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// TransferLine is one line of `authorizer ledger transfers --json`.
type TransferLine struct {
	ID     int64     `json:"id"`
	Key    string    `json:"key"`
	Kind   string    `json:"kind"`
	Amount int64     `json:"amount"` // this account's leg, cents
	At     time.Time `json:"at"`
}

// ledgerTransfers lists the transfers touching one account, oldest first.
func (c *cli) ledgerTransfers(args []string) int {
	fs := c.newFlags("ledger transfers", "ledger transfers --account ACCOUNT [--json]")
	account := fs.String("account", "", "ledger `account`, e.g. merchant:M001 or wallet:1001")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if *account == "" {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		var all []TransferLine
		for before := int64(0); ; {
			page, err := m.Ledger.Transfers(c.ctx, ledger.AccountID(*account), before, 1000)
			if err != nil {
				return c.fail(err)
			}
			for _, e := range page {
				l := TransferLine{ID: e.Result.ID, Key: e.Transfer.Key, Kind: e.Kind, At: e.Transfer.At}
				for _, p := range e.Postings {
					if p.Account == ledger.AccountID(*account) {
						l.Amount += p.Amount
					}
				}
				all = append(all, l)
				before = e.Result.ID
			}
			if len(page) < 1000 {
				break
			}
		}
		w := bufio.NewWriter(c.out)
		defer w.Flush()
		for i := len(all) - 1; i >= 0; i-- {
			l := all[i]
			if *asJSON {
				b, _ := json.Marshal(l)
				w.Write(append(b, '\n'))
				continue
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", l.ID, l.At.In(wallet.Shanghai).Format(time.DateTime), l.Kind, protocol.FormatCents(l.Amount), l.Key)
		}
		return 0
	})
}
