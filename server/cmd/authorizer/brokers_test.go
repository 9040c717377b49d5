package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The mqtt section names no external broker (embedded), one (broker_url)
// or several (broker_urls); bad combinations are refused with the rest of
// the config.
func TestBrokerSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mqtt    MQTTConfig
		brokers []string
		err     string // "" = valid
	}{
		{"embedded", MQTTConfig{Listen: "127.0.0.1:1883"}, nil, ""},
		{"one", MQTTConfig{BrokerURL: "tcp://a:1883", Username: "authz-1"}, []string{"tcp://a:1883"}, ""},
		{"list", MQTTConfig{BrokerURLs: []string{"tcp://a:1883", "ssl://b:8883"}, Username: "authz-1"}, []string{"tcp://a:1883", "ssl://b:8883"}, ""},
		{"both", MQTTConfig{BrokerURL: "tcp://a:1883", BrokerURLs: []string{"tcp://b:1883"}, Username: "authz-1"}, nil, "not both"},
		{"no user", MQTTConfig{BrokerURLs: []string{"tcp://a:1883"}}, nil, "mqtt.username"},
		{"scheme", MQTTConfig{BrokerURLs: []string{"tcp://a:1883", "mqtt://b:1883"}, Username: "authz-1"}, nil, "want tcp://"},
		{"twice", MQTTConfig{BrokerURLs: []string{"tcp://a:1883", "tcp://a:1883"}, Username: "authz-1"}, nil, "listed twice"},
		{"tls listener", MQTTConfig{BrokerURLs: []string{"tcp://a:1883"}, Username: "authz-1", TLSListen: ":8883", TLSCert: "c", TLSKey: "k"}, nil, "embedded broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.MQTT = tc.mqtt
			err := c.Validate("authorizer.json", Secrets{})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want one about %q", err, tc.err)
			}
			if tc.err == "" && !slices.Equal(c.MQTT.Brokers(), tc.brokers) {
				t.Errorf("brokers %v, want %v", c.MQTT.Brokers(), tc.brokers)
			}
		})
	}
}

// `broker mosquitto --keep-passwords` writes a second broker's files with
// the authorizer passwords already issued (one credential for a pair of
// brokers); without it a new password replaces the old one.
func TestMosquittoPairKeepsPasswords(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	cli := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"broker", "mosquitto", "--data", dir, "--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("broker mosquitto %v: %s", args, errs)
		}
		return out
	}
	passwd := func(sub string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, sub, "passwd"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	out := cli("--dir", filepath.Join(dir, "a"), "--port", "1883", "--authorizer", "authz-1")
	if !strings.Contains(out, "authorizer user authz-1 password: ") {
		t.Fatalf("first broker: no password printed:\n%s", out)
	}
	out = cli("--dir", filepath.Join(dir, "b"), "--port", "1884", "--authorizer", "authz-1", "--authorizer", "authz-2", "--keep-passwords")
	if strings.Contains(out, "authz-1 password: ") || !strings.Contains(out, "authz-1: password kept") || !strings.Contains(out, "authz-2 password: ") {
		t.Fatalf("second broker with --keep-passwords:\n%s", out)
	}
	a, b := passwd("a"), passwd("b")
	line := func(file string) string {
		for _, l := range strings.Split(file, "\n") {
			if strings.HasPrefix(l, "authz-1:") {
				return l
			}
		}
		return ""
	}
	if line(a) == "" || line(a) != line(b) {
		t.Errorf("authz-1's entry differs between the pair:\n%s\n%s", line(a), line(b))
	}
	cli("--dir", filepath.Join(dir, "c"), "--port", "1885", "--authorizer", "authz-1")
	if line(passwd("c")) == line(a) {
		t.Error("without --keep-passwords the password was not renewed")
	}
}
