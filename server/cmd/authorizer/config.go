package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// ConfigError lists every problem found in a configuration, so an operator
// fixes them in one pass instead of one start at a time.
type ConfigError struct {
	Path     string
	Problems []string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problem(s):", e.Path, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

// Secrets says which gateway secrets a command needs: serve needs those
// of the gateways it talks to, admin commands none.
type Secrets struct{ Bank, WeChat bool }

// Validate checks the whole configuration (issue 13 item 15): values the
// wallet would otherwise change silently (a shower hold below ¥15.00,
// non-positive limits or durations) and settings that would refuse every
// request of a kind (no supported bank) are problems, all listed at once.
// need adds what only the daemon needs: the secrets of the configured
// bank and WeChat Pay gateways, each problem naming the feature that needs
// the secret.
func (c FileConfig) Validate(path string, need Secrets) error {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }

	if c.HTTP == "" {
		add("http: no listen address")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("tls_cert and tls_key: give both (HTTPS) or neither")
	}
	if p := c.databaseProblem(); p != "" {
		add("%s", p)
	}
	if p := c.Offline.problem(); p != "" {
		add("%s", p)
	}
	if c.MaxBatch < 0 || c.MaxBatch > 4096 {
		add("max_batch: %d, want 1 to 4096 (or 0 for the defaults)", c.MaxBatch)
	}
	if c.MQTT.Workers < 0 || c.MQTT.MaxQueue < 0 || c.MQTT.MaxPerTerminal < 0 {
		add("mqtt.workers, mqtt.max_queue and mqtt.max_per_terminal: negative (0 for the defaults)")
	}
	if len(c.Campuses) == 0 {
		add("campuses: none configured: no merchant or student can be added")
	}
	ids := make([]string, 0, len(c.Campuses))
	for id := range c.Campuses {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !protocol.ValidID(id) {
			add("campuses: %q is not a valid id ([A-Za-z0-9_-], ≤ 32)", id)
		}
		if strings.TrimSpace(c.Campuses[id].Name) == "" {
			add("campuses.%s.name is empty", id)
		}
	}
	if len(c.SupportedBanks) == 0 {
		add("supported_banks is empty: every card binding would be refused, so no wallet could be activated")
	}
	seen := map[string]bool{}
	for _, b := range c.SupportedBanks {
		switch {
		case strings.TrimSpace(b) == "":
			add("supported_banks: an empty bank code")
		case seen[b]:
			add("supported_banks: %s is listed twice", b)
		}
		seen[b] = true
	}
	if c.DefaultLimitPerTx <= 0 {
		add("default_limit_per_tx is %d: the per-payment limit must be positive (cents)", c.DefaultLimitPerTx)
	}
	if c.DefaultLimitDaily <= 0 {
		add("default_limit_daily is %d: the daily limit must be positive (cents)", c.DefaultLimitDaily)
	}
	if c.DefaultLimitPerTx > 0 && c.DefaultLimitDaily > 0 && c.DefaultLimitPerTx > c.DefaultLimitDaily {
		add("default_limit_per_tx %s is above default_limit_daily %s", protocol.FormatCents(c.DefaultLimitPerTx), protocol.FormatCents(c.DefaultLimitDaily))
	}
	if c.BcryptCost != 0 && (c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost) {
		add("bcrypt_cost %d is outside %d..%d (0: the default %d)", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost, bcrypt.DefaultCost)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"password_lock", c.PasswordLock}, {"cert_validity", c.CertValidity}, {"hold_ttl", c.HoldTTL}} {
		if d.v <= 0 {
			add("%s is %v: it must be positive", d.name, time.Duration(d.v))
		}
	}
	if c.Tariff.CentsPerLitre <= 0 {
		add("tariff.cents_per_litre is %d: it must be positive", c.Tariff.CentsPerLitre)
	}
	if c.Tariff.PulsesPerLitre <= 0 {
		add("tariff.pulses_per_litre is %d: it must be positive", c.Tariff.PulsesPerLitre)
	}
	if c.Tariff.Hold < wallet.ShowerMinimum {
		add("tariff.hold is ¥%s: every shower holds at least ¥%s (DESIGN §2 rule 7)", protocol.FormatCents(c.Tariff.Hold), protocol.FormatCents(wallet.ShowerMinimum))
	}
	if c.Tariff.IdleTimeoutS <= 0 {
		add("tariff.idle_timeout_s is %d: it must be positive", c.Tariff.IdleTimeoutS)
	}
	if c.AuthTimeoutMS <= 0 {
		add("auth_timeout_ms is %d: it must be positive", c.AuthTimeoutMS)
	}

	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		add("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("log_format %q: want json or text", c.LogFormat)
	}
	m := c.MQTT
	if m.BrokerURL != "" && len(m.BrokerURLs) > 0 {
		add("mqtt: give broker_url or broker_urls, not both")
	}
	if brokers := m.Brokers(); len(brokers) > 0 {
		if m.Username == "" {
			add("mqtt.broker_url(s) is set: mqtt.username (the authorizer's broker user) is required")
		}
		if m.TLSListen != "" {
			add("mqtt.tls_listen configures the embedded broker, which does not run when mqtt.broker_url(s) is set")
		}
		seen := map[string]bool{}
		for _, u := range brokers {
			if !strings.HasPrefix(u, "tcp://") && !strings.HasPrefix(u, "ssl://") {
				add("mqtt broker %q: want tcp://host:port or ssl://host:port", u)
			}
			if seen[u] {
				add("mqtt broker %q is listed twice", u)
			}
			seen[u] = true
		}
	}
	if m.TLSListen != "" && (m.TLSCert == "" || m.TLSKey == "") {
		add("mqtt.tls_listen needs mqtt.tls_cert and mqtt.tls_key")
	}

	if c.Bank.BaseURL != "" {
		if c.Bank.ClientID == "" {
			add("bank.base_url is set: bank.client_id is required")
		}
		if need.Bank && c.Bank.Secret == "" {
			add("bank.base_url is set but the bank secret is missing: set CAMPUSPAY_BANK_SECRET; card binding (wallet activation), " +
				"top-up, withdrawal, wallet cancellation with a balance and payments funded by the bank card need it " +
				"(remove bank.base_url to run without a bank: those features are then refused)")
		}
	}
	if c.WeChat.PayURL != "" {
		if c.WeChat.AppID == "" || c.WeChat.MchID == "" {
			add("wechat.pay_url is set: wechat.app_id and wechat.mch_id are required")
		}
		if need.WeChat && c.WeChat.APIKey == "" {
			add("wechat.pay_url is set but the WeChat Pay API key is missing: set CAMPUSPAY_WECHAT_API_KEY; " +
				"WeChat payment codes at the tills and their reversals need it (remove wechat.pay_url to refuse WeChat codes)")
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return &ConfigError{Path: path, Problems: ps}
}
