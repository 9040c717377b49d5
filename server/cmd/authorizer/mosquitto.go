package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"campuspay/server/broker"
)

// Mosquitto cannot check the wallet's bcrypt hashes, so when a terminal's
// broker password is issued its Mosquitto password-file line (PBKDF2, the
// format mosquitto_passwd writes) is kept beside the databases; `broker
// mosquitto` writes the broker's files from these lines.
const mosquittoEntries = "mosquitto-passwd.entries"

// saveMosquittoEntry records user's password-file line, replacing an
// older one.
func saveMosquittoEntry(data, user, password string) error {
	line, err := broker.PasswordEntry(user, password, rand.Reader)
	if err != nil {
		return err
	}
	all, err := readMosquittoEntries(data)
	if err != nil {
		return err
	}
	all[user] = line
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

func readMosquittoEntries(data string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(filepath.Join(data, mosquittoEntries))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mosquitto entries: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if user, _, ok := strings.Cut(sc.Text(), ":"); ok {
			out[user] = sc.Text()
		}
	}
	return out, sc.Err()
}

// brokerMosquitto writes mosquitto.conf, the password file and the ACL for
// the registered terminals and the given authorizer service users.
func (c *cli) brokerMosquitto(args []string) int {
	fs := c.newFlags("broker mosquitto", "broker mosquitto --dir DIR [--port 1883] [--bind ADDR] [--tls-port 8883 --ca F --cert F --key F] [--authorizer NAME]... [--keep-passwords]")
	dir := fs.String("dir", "", "write mosquitto.conf, passwd, acl and data/ into this `folder`")
	port := fs.Int("port", 1883, "plain TCP listener `port` (0: none)")
	bind := fs.String("bind", "127.0.0.1", "listeners' bind `address` (\"\" for all)")
	tlsPort := fs.Int("tls-port", 0, "TLS listener `port` (0: none)")
	ca := fs.String("ca", "", "CA `file` (TLS)")
	cert := fs.String("cert", "", "server certificate `file` (TLS)")
	key := fs.String("key", "", "server key `file` (TLS)")
	clientCert := fs.Bool("require-client-cert", false, "TLS: also require a client certificate signed by --ca")
	runAs := fs.String("user", "", "account mosquitto drops to when started as root (default: mosquitto's, \"mosquitto\")")
	keep := fs.Bool("keep-passwords", false, "authorizer users that already have a password keep it (a second broker of a pair, or files re-written after `terminal add`)")
	var authorizers multiFlag
	fs.Var(&authorizers, "authorizer", "authorizer service user `name` (repeat; default authz-1); a new password is printed once for each")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if *dir == "" {
		fs.Usage()
		return 2
	}
	if len(authorizers) == 0 {
		authorizers = multiFlag{"authz-1"}
	}
	data := c.common.data
	if err := os.MkdirAll(data, 0o700); err != nil {
		return c.fail(err)
	}
	kept, err := readMosquittoEntries(data)
	if err != nil {
		return c.fail(err)
	}
	for _, a := range authorizers {
		if _, ok := kept[a]; ok && *keep {
			fmt.Fprintf(c.out, "authorizer user %s: password kept\n", a)
			continue
		}
		pw := make([]byte, 18)
		if _, err := rand.Read(pw); err != nil {
			return c.fail(err)
		}
		secret := hex.EncodeToString(pw)
		if err := saveMosquittoEntry(data, a, secret); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "authorizer user %s password: %s (shown once: give it to that authorizer in $CAMPUSPAY_MQTT_PASSWORD)\n", a, secret)
	}
	entries, err := readMosquittoEntries(data)
	if err != nil {
		return c.fail(err)
	}
	lines := make([]string, 0, len(entries))
	for _, l := range entries {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	files, err := broker.WriteMosquitto(broker.Mosquitto{Dir: *dir, Bind: *bind, Port: *port, TLSPort: *tlsPort,
		CAFile: *ca, CertFile: *cert, KeyFile: *key, RequireClientCert: *clientCert, Authorizers: authorizers, RunAs: *runAs}, lines)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.out, "wrote %s, %s, %s (%d users)\nstart: mosquitto -c %s   (send SIGHUP after re-running this command)\n",
		files.Conf, files.Passwd, files.ACL, len(lines), files.Conf)
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
