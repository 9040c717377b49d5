// Package scenario runs a whole simulated campus from the real binaries:
// the authorizer (embedded MQTT broker, SQLite), the bank and WeChat Pay
// simulators, one hwsim rig of device twins per box, and one real
// terminald process per box. The scripted day (day.go) drives students'
// phones and the boxes' devices and checks every outcome against the wallet
// rules; the lunch rush (rush.go) pushes many payments through many boxes
// across a broker restart. `hwsim demo` and the acceptance tests run both.
package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/hwsim/phone"
	"campuspay/hwsim/rig"
	"campuspay/hwsim/rig/ctl"
	wechatsim "campuspay/hwsim/wechat"
	"campuspay/protocol"
	"campuspay/terminal/daemon"
)

// Shared secrets between the authorizer and the simulators. They exist
// only in this simulated campus.
const (
	bankClient   = "authorizer"
	bankSecret   = "demo-bank-secret"
	wechatAppID  = "wx00demo00000001"
	wechatMchID  = "1900000001"
	wechatAPIKey = "demo-wechat-api-key-0123456789ab"
	wechatMini   = "wx00demo00000002"
	wechatMiniSk = "demo-mini-secret"
)

// Options configure a campus.
type Options struct {
	Bin string    // folder with the authorizer and terminald binaries
	Dir string    // campus folder; created, must be empty or absent
	Out io.Writer // timeline and summary
	// Broker is "" for the authorizer's embedded broker, or "mosquitto":
	// a real Mosquitto configured by `authorizer broker mosquitto`, which
	// the authorizer and every terminal connect to.
	Broker string
	// Brokers is how many Mosquitto brokers run with Broker "mosquitto"
	// (default 1). The authorizer subscribes on all of them; each
	// terminal lists them all, its BoxSpec.FirstBroker first.
	Brokers int
	// RequireBrowser fails the day when headless Chromium is missing
	// (the acceptance test); the demo skips the web-wallet step instead,
	// and its offline act pays with the phone simulator, saying so.
	RequireBrowser bool
}

// Student is one student of the roster, with the phone they use.
type Student struct {
	No, Name, IDNumber, Phone, Category, Campus, CardUID, Password string
	BankCode, BankCard                                             string
	OpenID                                                         string // WeChat user, "" if none
	App                                                            *phone.Phone
}

// Box is one terminal: its device twins, its daemon and its display.
type Box struct {
	ID, Merchant, Mode string
	Rig                *rig.Rig
	Proc               *Proc
	Display            *Display
	DisplayURL         string
	StatusURL          string
	FirstBroker        string // with several brokers: the URL the box tries first
	firstAddr          string // the address of the broker behind FirstBroker
	config             string
	password           string
}

// Campus is a running simulated campus.
type Campus struct {
	opt      Options
	ctx      context.Context
	Timeline *Timeline

	Bank      *banksim.Sim
	BankURL   string
	WeChat    *wechatsim.Sim
	WeChatURL string

	Authorizer *Proc
	API        string   // http://127.0.0.1:PORT
	MQTT       string   // 127.0.0.1:PORT of the broker the terminals use (the first)
	MQTTs      []string // every broker's 127.0.0.1:PORT, MQTT first
	authzCfg   string
	authzEnv   []string
	mosquittos []*mosquitto // the external brokers, in MQTTs order

	Control    *ctl.Server
	ControlURL string

	Students map[string]*Student
	Boxes    map[string]*Box
	closers  []func()
}

// New prepares the campus folder and starts the simulators. Call Close.
func New(ctx context.Context, opt Options) (*Campus, error) {
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	for _, b := range []string{"authorizer", "terminald"} {
		if _, err := os.Stat(filepath.Join(opt.Bin, b)); err != nil {
			return nil, fmt.Errorf("scenario: %s not built in %s (run make build): %w", b, opt.Bin, err)
		}
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("scenario: campus folder: %w", err)
	}
	if ents, _ := os.ReadDir(opt.Dir); len(ents) > 0 {
		return nil, fmt.Errorf("scenario: campus folder %s is not empty", opt.Dir)
	}
	c := &Campus{opt: opt, ctx: ctx, Timeline: NewTimeline(opt.Out, time.Now),
		Students: map[string]*Student{}, Boxes: map[string]*Box{}}
	if err := c.startSims(); err != nil {
		c.Close()
		return nil, err
	}
	c.Control = ctl.NewServer()
	url, err := c.Control.Start("127.0.0.1:0")
	if err != nil {
		c.Close()
		return nil, err
	}
	c.ControlURL = url
	c.closers = append(c.closers, func() { c.Control.Close() })
	return c, nil
}

// Close stops every process and simulator, terminals first.
func (c *Campus) Close() {
	for _, b := range c.Boxes {
		if b.Proc != nil {
			b.Proc.Stop(10 * time.Second)
		}
		if b.Display != nil {
			b.Display.Close()
		}
		if b.Rig != nil {
			b.Rig.Close()
		}
	}
	if c.Authorizer != nil {
		c.Authorizer.Stop(10 * time.Second)
	}
	for _, m := range c.mosquittos {
		if m.proc != nil {
			m.proc.Stop(5 * time.Second)
		}
	}
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

func (c *Campus) startSims() error {
	bank, err := banksim.New(banksim.Config{Clients: map[string]string{bankClient: bankSecret}})
	if err != nil {
		return fmt.Errorf("scenario: bank simulator: %w", err)
	}
	c.Bank = bank
	if c.BankURL, err = bank.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("scenario: bank simulator: %w", err)
	}
	c.closers = append(c.closers, func() { bank.Close() })
	wx := wechatsim.New(wechatsim.Config{AppID: wechatAppID, MchID: wechatMchID, APIKey: wechatAPIKey, MiniAppID: wechatMini, MiniSecret: wechatMiniSk})
	c.WeChat = wx
	if c.WeChatURL, err = wx.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("scenario: WeChat simulator: %w", err)
	}
	c.closers = append(c.closers, func() { wx.Close() })
	return nil
}

// AddStudent puts a student on the roster-to-be and opens their bank
// account (and WeChat account when openID is set).
func (c *Campus) AddStudent(s *Student, bankBalance int64, wechatBalance int64) error {
	if s.IDNumber == "" {
		s.IDNumber = idNumber("33010620040101" + s.No[len(s.No)-3:])
	}
	if s.BankCode == "" {
		s.BankCode = "CCB"
	}
	if s.BankCard == "" {
		s.BankCard = banksim.LuhnComplete("621700" + fmt.Sprintf("%012s", s.No))
	}
	if err := c.Bank.AddAccount(banksim.Account{BankCode: s.BankCode, CardNumber: s.BankCard, Name: s.Name,
		IDNumber: s.IDNumber, Phone: s.Phone, Balance: bankBalance}); err != nil {
		return fmt.Errorf("scenario: bank account for %s: %w", s.No, err)
	}
	if s.OpenID != "" {
		if err := c.WeChat.CreateUser(wechatsim.User{OpenID: s.OpenID, Balance: wechatBalance}); err != nil {
			return fmt.Errorf("scenario: WeChat user for %s: %w", s.No, err)
		}
	}
	c.Students[s.No] = s
	return nil
}

// idNumber completes 17 digits with the GB 11643 check character.
func idNumber(first17 string) string {
	w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * w[i]
	}
	return first17 + string("10X98765432"[sum%11])
}

// authorizerConfig is the part of the authorizer's config file the campus
// writes.
type authorizerConfig struct {
	HTTP           string                     `json:"http"`
	Campuses       map[string]map[string]any  `json:"campuses"`
	SupportedBanks []string                   `json:"supported_banks"`
	LimitPerTx     int64                      `json:"default_limit_per_tx"`
	LimitDaily     int64                      `json:"default_limit_daily"`
	BcryptCost     int                        `json:"bcrypt_cost"`
	Tariff         protocol.Tariff            `json:"tariff"`
	AuthTimeoutMS  int                        `json:"auth_timeout_ms"`
	Bank           map[string]string          `json:"bank"`
	WeChat         map[string]string          `json:"wechat"`
	MQTT           map[string]any             `json:"mqtt"`
	Extra          map[string]json.RawMessage `json:"-"`
}

// StartAuthorizer writes the authorizer's config, imports the roster,
// registers merchants and terminals, and starts `authorizer serve`.
func (c *Campus) StartAuthorizer(merchants [][3]string, boxes []BoxSpec) error {
	httpAddr, err := FreeAddr()
	if err != nil {
		return err
	}
	mqttAddr, err := FreeAddr()
	if err != nil {
		return err
	}
	c.MQTTs = []string{mqttAddr}
	for len(c.MQTTs) < c.opt.Brokers && c.opt.Broker == "mosquitto" {
		a, err := FreeAddr()
		if err != nil {
			return err
		}
		c.MQTTs = append(c.MQTTs, a)
	}
	c.API = "http://" + httpAddr
	cfg := authorizerConfig{
		HTTP: httpAddr,
		Campuses: map[string]map[string]any{
			"yungu": {"name": "云谷", "showers": true},
			"main":  {"name": "主校区", "showers": false},
		},
		SupportedBanks: []string{"CCB", "ICBC", "ABC", "BOC"},
		LimitPerTx:     500_00,
		LimitDaily:     1000_00,
		BcryptCost:     4, // a simulated campus: fast logins
		// ¥1.00 a litre and a ¥15.00 hold, so a demo shower reaches its
		// hold in seconds at a fast simulated flow.
		Tariff:        protocol.Tariff{CentsPerLitre: 100, PulsesPerLitre: 450, Hold: 1500, IdleTimeoutS: 20},
		AuthTimeoutMS: 4000,
		Bank:          map[string]string{"base_url": c.BankURL, "client_id": bankClient},
		WeChat: map[string]string{"pay_url": c.WeChatURL, "login_url": c.WeChatURL, "app_id": wechatAppID,
			"mch_id": wechatMchID, "mini_app_id": wechatMini},
		MQTT: map[string]any{"listen": mqttAddr},
	}
	if c.opt.Broker == "mosquitto" {
		cfg.MQTT = map[string]any{"broker_url": "tcp://" + mqttAddr, "username": "authz-1"}
		if len(c.MQTTs) > 1 {
			var urls []string
			for _, a := range c.MQTTs {
				urls = append(urls, "tcp://"+a)
			}
			cfg.MQTT = map[string]any{"broker_urls": urls, "username": "authz-1"}
		}
	}
	c.MQTT = mqttAddr
	b, _ := json.MarshalIndent(cfg, "", "  ")
	c.authzCfg = filepath.Join(c.opt.Dir, "authorizer.json")
	if err := os.WriteFile(c.authzCfg, b, 0o600); err != nil {
		return err
	}
	// Roster import.
	var roster bytes.Buffer
	roster.WriteString("student_no,name,id_number,phone,category,campus,card_uid,password\n")
	for _, s := range c.sortedStudents() {
		fmt.Fprintf(&roster, "%s,%s,%s,%s,%s,%s,%s,%s\n", s.No, s.Name, s.IDNumber, s.Phone, s.Category, s.Campus, s.CardUID, s.Password)
	}
	rosterPath := filepath.Join(c.opt.Dir, "roster.csv")
	if err := os.WriteFile(rosterPath, roster.Bytes(), 0o600); err != nil {
		return err
	}
	out, err := c.Admin("roster", "import", rosterPath)
	c.Timeline.Add(Event{Who: "admin", Where: "authorizer", What: fmt.Sprintf("roster import: %d students", len(c.Students)), Result: lastLine(out), OK: err == nil})
	if err != nil {
		return fmt.Errorf("scenario: roster import: %w\n%s", err, out)
	}
	for _, m := range merchants {
		if out, err := c.Admin("merchant", "add", "--id", m[0], "--name", m[1], "--campus", m[2]); err != nil {
			return fmt.Errorf("scenario: merchant add %s: %w\n%s", m[0], err, out)
		}
	}
	for _, spec := range boxes {
		args := []string{"terminal", "add", "--id", spec.ID, "--merchant", spec.Merchant, "--mode", spec.Mode}
		if spec.FixedAmount > 0 {
			args = append(args, "--fixed-amount", fmt.Sprint(spec.FixedAmount))
		}
		out, err := c.Admin(args...)
		if err != nil {
			return fmt.Errorf("scenario: terminal add %s: %w\n%s", spec.ID, err, out)
		}
		pw := ""
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "broker password: "); ok {
				pw = strings.TrimSpace(v)
			}
		}
		if pw == "" {
			return fmt.Errorf("scenario: terminal add %s printed no password", spec.ID)
		}
		c.Boxes[spec.ID] = &Box{ID: spec.ID, Merchant: spec.Merchant, Mode: spec.Mode, password: pw}
	}
	c.Timeline.Add(Event{Who: "admin", Where: "authorizer", What: fmt.Sprintf("%d merchants, %d terminals registered", len(merchants), len(boxes)), Result: "ok", OK: true})
	env := []string{"CAMPUSPAY_BANK_SECRET=" + bankSecret, "CAMPUSPAY_WECHAT_API_KEY=" + wechatAPIKey, "CAMPUSPAY_WECHAT_MINI_SECRET=" + wechatMiniSk}
	if c.opt.Broker == "mosquitto" {
		pw, err := c.startMosquittos()
		if err != nil {
			return err
		}
		env = append(env, "CAMPUSPAY_MQTT_PASSWORD="+pw)
	}
	c.authzEnv = env
	if err := c.startAuthorizer(); err != nil {
		return err
	}
	c.Timeline.Add(Event{Who: "admin", Where: "authorizer", What: "authorizer serving (API + MQTT)", Result: "ok", OK: true})
	for _, s := range c.Students {
		s.App = phone.New(c.API, s.No, s.Password)
	}
	return nil
}

func (c *Campus) startAuthorizer() error {
	var err error
	c.Authorizer, err = Start(c.opt.Dir, "authorizer", filepath.Join(c.opt.Bin, "authorizer"),
		[]string{"serve", "--data", filepath.Join(c.opt.Dir, "authorizer-data"), "--config", c.authzCfg}, c.authzEnv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	return c.Authorizer.WaitHTTP(ctx, c.API+"/healthz")
}

// mosquitto is one external broker of the campus.
type mosquitto struct {
	name, addr, conf string
	proc             *Proc
}

// startMosquittos writes each Mosquitto's files with the admin CLI
// (terminals registered so far, service user authz-1 with one password
// for all: --keep-passwords after the first) and starts it on its address
// of MQTTs. It returns authz-1's password.
func (c *Campus) startMosquittos() (string, error) {
	pw := ""
	for i, addr := range c.MQTTs {
		name := "mosquitto"
		if i > 0 {
			name = fmt.Sprintf("mosquitto-%d", i+1)
		}
		_, port, _ := strings.Cut(addr, ":")
		args := []string{"broker", "mosquitto", "--dir", filepath.Join(c.opt.Dir, name), "--port", port,
			"--bind", "127.0.0.1", "--authorizer", "authz-1", "--user", "root"}
		if i > 0 {
			args = append(args, "--keep-passwords")
		}
		out, err := c.Admin(args...)
		if err != nil {
			return "", fmt.Errorf("scenario: broker mosquitto: %w\n%s", err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, "authorizer user authz-1 password: "); ok {
				pw, _, _ = strings.Cut(rest, " ")
			}
		}
		if pw == "" {
			return "", fmt.Errorf("scenario: broker mosquitto printed no password:\n%s", out)
		}
		m := &mosquitto{name: name, addr: addr, conf: filepath.Join(c.opt.Dir, name, "mosquitto.conf")}
		c.mosquittos = append(c.mosquittos, m)
		if err := c.runMosquitto(m); err != nil {
			return "", err
		}
	}
	return pw, nil
}

func (c *Campus) runMosquitto(m *mosquitto) error {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			return fmt.Errorf("scenario: mosquitto not installed (make deps): %w", err)
		}
	}
	if m.proc, err = Start(c.opt.Dir, m.name, bin, []string{"-c", m.conf}, nil); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	return m.proc.WaitTCP(ctx, m.addr)
}

// RestartBroker kills the external Mosquitto (kill -9; the first one) and
// starts it again; with the embedded broker it restarts the authorizer
// instead.
func (c *Campus) RestartBroker() error {
	if len(c.mosquittos) == 0 {
		return c.RestartAuthorizer()
	}
	c.mosquittos[0].proc.Kill()
	return c.runMosquitto(c.mosquittos[0])
}

// RestartAuthorizer kills the authorizer (kill -9: its embedded broker
// goes with it) and starts it again on the same data.
func (c *Campus) RestartAuthorizer() error {
	c.Authorizer.Kill()
	return c.startAuthorizer()
}

// Admin runs an authorizer admin command on the campus data folder.
func (c *Campus) Admin(args ...string) (string, error) {
	// Flags go after the subcommand words and before positional arguments.
	words := 0
	for words < len(args) && !strings.HasPrefix(args[words], "-") && words < 2 {
		words++
	}
	full := append(append(append([]string{}, args[:words]...), "--data", filepath.Join(c.opt.Dir, "authorizer-data"), "--config", c.authzCfg), args[words:]...)
	cmd := exec.CommandContext(c.ctx, filepath.Join(c.opt.Bin, "authorizer"), full...)
	cmd.Env = append(os.Environ(), "CAMPUSPAY_BANK_SECRET="+bankSecret, "CAMPUSPAY_WECHAT_API_KEY="+wechatAPIKey, "CAMPUSPAY_WECHAT_MINI_SECRET="+wechatMiniSk)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// BoxSpec describes a terminal to build.
type BoxSpec struct {
	ID, Merchant, Mode string
	FixedAmount        int64
	Rig                rig.Config // Terminal, Dir and Broker are filled in
	// FirstBroker is the index in Campus.MQTTs of the box's first-choice
	// broker (with several brokers).
	FirstBroker int
}

// StartBox creates the box's device twins and starts its terminald.
func (c *Campus) StartBox(spec BoxSpec) error {
	b := c.Boxes[spec.ID]
	if b == nil {
		return fmt.Errorf("scenario: box %s was not registered", spec.ID)
	}
	dir := filepath.Join(c.opt.Dir, "boxes", spec.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The box's brokers: its first choice (behind the rig's network
	// cutter), then the others in campus order.
	brokers := []string{c.MQTTs[spec.FirstBroker%len(c.MQTTs)]}
	for i := range c.MQTTs {
		if i != spec.FirstBroker%len(c.MQTTs) {
			brokers = append(brokers, c.MQTTs[i])
		}
	}
	rc := spec.Rig
	rc.Terminal, rc.Dir, rc.Broker = spec.ID, filepath.Join(dir, "dev"), brokers[0]
	r, err := rig.New(rc)
	if err != nil {
		return fmt.Errorf("scenario: rig %s: %w", spec.ID, err)
	}
	b.Rig = r
	c.Control.Add(r)
	// A port FreeAddr found free can be taken by another process before
	// terminald listens on it (tests run in parallel): then the box starts
	// again on new ones.
	for attempt := 1; ; attempt++ {
		dispAddr, err := FreeAddr()
		if err != nil {
			return err
		}
		statusAddr, err := FreeAddr()
		if err != nil {
			return err
		}
		b.DisplayURL, b.StatusURL = "http://"+dispAddr, "http://"+statusAddr
		// The rig describes its twins in terminald's own config shape.
		var devs daemon.DevicesConfig
		raw, _ := json.Marshal(r.DeviceConfig())
		if err := json.Unmarshal(raw, &devs); err != nil {
			return fmt.Errorf("scenario: rig %s devices: %w", spec.ID, err)
		}
		devs.Display = &daemon.DeviceConfig{Driver: "web", Listen: dispAddr}
		cfg := map[string]any{
			"terminal":      spec.ID,
			"mode":          spec.Mode,
			"data_dir":      filepath.Join(dir, "data"),
			"broker":        map[string]any{"url": "tcp://" + r.Devices().Broker, "password_env": "TERMINALD_BROKER_PASSWORD"},
			"devices":       devs,
			"status_listen": statusAddr,
			"log_level":     "info",
			// A demo student gives up on the WeChat password prompt after 8 s.
			"paying_timeout_ms": 8000,
		}
		if len(brokers) > 1 {
			urls := []string{"tcp://" + r.Devices().Broker}
			for _, a := range brokers[1:] {
				urls = append(urls, "tcp://"+a)
			}
			cfg["broker"] = map[string]any{"urls": urls, "password_env": "TERMINALD_BROKER_PASSWORD"}
			b.FirstBroker, b.firstAddr = urls[0], brokers[0]
		}
		raw, _ = json.MarshalIndent(cfg, "", "  ")
		b.config = filepath.Join(dir, "terminald.json")
		if err := os.WriteFile(b.config, raw, 0o600); err != nil {
			return err
		}
		logSize := fileSize(filepath.Join(dir, "terminald.log"))
		err = c.runBox(b)
		if err == nil || attempt == 3 || !portTaken(filepath.Join(dir, "terminald.log"), logSize) {
			return err
		}
	}
}

// fileSize is the size of the file at path, 0 if there is none.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// portTaken reports whether the log at path, past its first from bytes,
// says a listen failed because the address was in use.
func portTaken(path string, from int64) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return false
	}
	return strings.Contains(string(b[from:]), "address already in use")
}

func (c *Campus) runBox(b *Box) error {
	var err error
	b.Proc, err = Start(filepath.Dir(b.config), "terminald", filepath.Join(c.opt.Bin, "terminald"),
		[]string{"--config", b.config}, []string{"TERMINALD_BROKER_PASSWORD=" + b.password})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if err := b.Proc.WaitHTTP(ctx, b.DisplayURL+"/"); err != nil {
		return err
	}
	if b.Display == nil {
		b.Display = WatchDisplay(c.ctx, b.DisplayURL)
	}
	return nil
}

// RestartBox kills a box's daemon (kill -9, like a power cut) and starts
// it again on the same journal.
func (c *Campus) RestartBox(id string) error {
	b := c.Boxes[id]
	b.Proc.Kill()
	return c.runBox(b)
}

// WaitOnline waits until the box's display shows it online and idle.
func (c *Campus) WaitOnline(ctx context.Context, id string) error {
	b := c.Boxes[id]
	_, err := b.Display.WaitAfter(ctx, 0, "online", func(s Screen) bool { return s.Online })
	return err
}

func (c *Campus) sortedStudents() []*Student {
	var out []*Student
	for _, s := range c.Students {
		out = append(out, s)
	}
	sortStudents(out)
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// journalDepth waits until the box's status page reports an empty journal
// outbox and returns the last depth seen.
func (c *Campus) journalDepth(ctx context.Context, id string) (int, error) {
	b := c.Boxes[id]
	depth := -1
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var st struct {
			JournalDepth int `json:"journal_depth"`
			Reversals    int `json:"reversals_pending"`
		}
		if err := getJSON(ctx, b.StatusURL+"/status.json", &st); err == nil {
			depth = st.JournalDepth + st.Reversals
			if depth == 0 {
				return 0, nil
			}
		}
		select {
		case <-ctx.Done():
			return depth, fmt.Errorf("journal of %s not drained (depth %d): %w", id, depth, ctx.Err())
		case <-tick.C:
		}
	}
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
