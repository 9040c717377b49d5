package load

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/server/broker"
)

// EchoOptions configure the baseline responder: a bare paho client that
// answers every terminal request by publishing its payload back on the
// terminal's response topic, doing nothing else.
type EchoOptions struct {
	// Broker is an external broker's URL (tcp://host:port), with the
	// service user User and Password (Mosquitto: a second authorizer user).
	Broker, User, Password string
	// Listen, instead of Broker, runs the authorizer's embedded broker
	// (server/broker: the same mochi server, authentication and ACL) on
	// this address in this process, with the terminal passwords of the
	// provision result Creds: the broker side of `authorizer serve` with
	// its embedded broker; the echo itself is a paho client over loopback
	// TCP, where serve joins its broker in-process.
	Listen, Creds string
	// Ready is a file created once the responder is subscribed.
	Ready string
	Log   *slog.Logger
}

// Echo runs the responder until ctx ends.
func Echo(ctx context.Context, o EchoOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Listen != "" {
		creds, err := readCreds(o.Creds)
		if err != nil {
			return err
		}
		pw := map[string]string{}
		for _, t := range creds.Terminals {
			pw[t.ID] = t.Password
		}
		secret := make([]byte, 24)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		svc := broker.Credential{User: "echo-1", Password: hex.EncodeToString(secret)}
		b, err := broker.New(broker.Config{Addr: o.Listen, Services: []broker.Credential{svc}, Logger: o.Log,
			Authenticate: func(user, pass string) bool {
				want, ok := pw[user]
				return ok && subtle.ConstantTimeCompare([]byte(want), []byte(pass)) == 1
			}})
		if err != nil {
			return fmt.Errorf("load: echo broker: %w", err)
		}
		defer b.Close()
		o.Broker, o.User, o.Password = "tcp://"+b.Addr(), svc.User, svc.Password
	}
	handler := func(c paho.Client, m paho.Message) {
		terminal, ch, err := protocol.ParseTopic(m.Topic())
		if err != nil || ch != protocol.ChanRequest {
			return
		}
		c.Publish(protocol.Topic(protocol.ChanResponse, terminal), 1, false, m.Payload())
	}
	opts := paho.NewClientOptions().AddBroker(o.Broker).SetClientID(o.User).SetUsername(o.User).SetPassword(o.Password).
		SetCleanSession(true).SetKeepAlive(5 * time.Second).SetConnectTimeout(10 * time.Second).SetDefaultPublishHandler(handler)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("load: echo: connect %s: %v", o.Broker, tok.Error())
	}
	defer c.Disconnect(250)
	if tok := c.Subscribe(protocol.AuthorizerFilter(protocol.ChanRequest, "echo"), 1, nil); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("load: echo: subscribe: %v", tok.Error())
	}
	if o.Ready != "" {
		if err := os.WriteFile(o.Ready, []byte("ready\n"), 0o644); err != nil {
			return err
		}
	}
	o.Log.Info("echo responder ready", "broker", o.Broker)
	<-ctx.Done()
	return nil
}

// creds is the part of `authorizer provision`'s result the load reads.
type creds struct {
	Merchant      string     `json:"merchant"`
	AuthTimeoutMS int        `json:"auth_timeout_ms"`
	Terminals     []Terminal `json:"terminals"`
	Students      []Device   `json:"students"`
}

func readCreds(path string) (*creds, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var c creds
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("load: %s: %w", path, err)
	}
	return &c, nil
}
