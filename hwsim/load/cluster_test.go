package load

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
)

// TestAcrossAuthorizers: three `authorizer serve` processes on one
// PostgreSQL behind one Mosquitto, whose shared subscription hands
// consecutive requests to different authorizers. Across processes:
//   - one student paying at four terminals at once never overdraws;
//   - one code shown at two terminals at once is charged once;
//   - a journal entry delivered twice, to two authorizers, is applied once.
func TestAcrossAuthorizers(t *testing.T) {
	bin := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	h, err := newHarness(Options{Bin: bin, Dir: t.TempDir(), Broker: Mosquitto, Store: StorePostgres, Authorizers: 3,
		Students: 3, Terminals: 4, TopUp: 10_00, AuthTimeout: 30 * time.Second, Out: &out, Load: Load{Payments: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if err := h.setup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.authorizer {
		if err := h.startAuthorizer(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if t.Failed() {
			t.Log("\n" + out.String())
		}
	}()
	var terms []*rawTerminal
	for _, tc := range h.creds.Terminals {
		terms = append(terms, dialTerminal(t, "tcp://"+h.mqttAddr, tc))
	}
	handled := func(op string) []float64 {
		var n []float64
		for _, a := range h.authorizer {
			n = append(n, metricSum(t, "http://"+a.http+"/metrics", `campuspay_op_seconds_count{op="`+op+`"}`))
		}
		return n
	}
	spread := func(before, after []float64) (int, string) {
		busy, s := 0, []string{}
		for i := range before {
			if d := after[i] - before[i]; d > 0 {
				busy++
				s = append(s, fmt.Sprintf("%s %.0f", h.authorizer[i].name, d))
			}
		}
		return busy, strings.Join(s, ", ")
	}
	balance := func(s Device) int64 {
		o, err := h.admin(ctx, "ledger", "transfers", "--account", fmt.Sprintf("wallet:%d", s.UserID), "--json")
		if err != nil {
			t.Fatalf("ledger transfers: %v\n%s", err, o)
		}
		var sum int64
		sc := bufio.NewScanner(strings.NewReader(o))
		for sc.Scan() {
			var l struct{ Amount int64 }
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			sum += l.Amount
		}
		return sum
	}

	t.Run("one student at four terminals never overdraws", func(t *testing.T) {
		s := h.creds.Students[0]
		before := handled("pay")
		const n, amount = 8, 3_00 // ¥24.00 asked of ¥10.00
		reqs := make([]*protocol.Request, n)
		for i := range reqs {
			reqs[i] = payRequest(t, terms[i%len(terms)].id, s, uint16(i+1), amount)
		}
		resps := sendAll(t, terms, reqs)
		busy, who := spread(before, handled("pay"))
		t.Logf("handled by %s", who)
		if busy < 2 {
			t.Fatalf("the payments did not spread over the authorizers: %s", who)
		}
		fromBalance := int64(0)
		for i, r := range resps {
			switch {
			case r.Status == protocol.StatusApproved && r.Channel == protocol.ChannelBalance:
				fromBalance += amount
			case r.Status == protocol.StatusApproved && r.Channel == protocol.ChannelBankCard:
			case r.Status == protocol.StatusDeclined && r.Code == protocol.ErrInsufficientFunds.Code:
			default:
				t.Errorf("payment %d: %+v", i, *r)
			}
		}
		got := balance(s)
		if got < 0 || got != 10_00-fromBalance || fromBalance != 9_00 {
			t.Fatalf("wallet %d cents after %d cents approved from it; want 100 left of 1000", got, fromBalance)
		}
	})

	t.Run("one code at two terminals is charged once", func(t *testing.T) {
		s := h.creds.Students[1]
		before := handled("pay")
		for round := range 5 {
			code := makeCode(t, s, uint16(100+round))
			reqs := []*protocol.Request{payWithCode(t, terms[0].id, code, 1_00), payWithCode(t, terms[1].id, code, 1_00)}
			resps := sendAll(t, terms[:2], reqs)
			approved, used := 0, 0
			for _, r := range resps {
				switch {
				case r.Status == protocol.StatusApproved:
					approved++
				case r.Code == protocol.ErrCodeUsed.Code:
					used++
				}
			}
			if approved != 1 || used != 1 {
				t.Fatalf("round %d: %+v / %+v: want one approved, one CODE_ALREADY_USED", round, *resps[0], *resps[1])
			}
		}
		busy, who := spread(before, handled("pay"))
		t.Logf("handled by %s", who)
		if busy < 2 {
			t.Fatalf("the payments did not spread over the authorizers: %s", who)
		}
		if got := balance(s); got != 10_00-5*1_00 {
			t.Fatalf("wallet %d cents, want 500", got)
		}
	})

	t.Run("a journal entry delivered twice is applied once", func(t *testing.T) {
		s := h.creds.Students[2]
		term := terms[2]
		pay := payRequest(t, term.id, s, 1, 4_00)
		if r := sendAll(t, []*rawTerminal{term}, []*protocol.Request{pay})[0]; r.Status != protocol.StatusApproved {
			t.Fatalf("pay: %+v", *r)
		}
		// The terminal reverses it offline and uploads the reversal; the
		// broker delivers the entry twice (a redelivery after a lost ack),
		// consecutive deliveries going to different authorizers.
		e := &protocol.JournalEntry{Terminal: term.id, Seq: 1, Tx: pay.Tx, Kind: protocol.EntryReversal, Status: protocol.StatusReversed,
			Amount: 4_00, CredKind: protocol.CredCode, At: time.Now()}
		before := handled("journal")
		acks := term.journal(t, e, 2)
		busy, who := spread(before, handled("journal"))
		t.Logf("handled by %s", who)
		for _, a := range acks {
			if !a.OK {
				t.Fatalf("ack %+v", a)
			}
		}
		if busy < 2 {
			t.Fatalf("the deliveries did not reach two authorizers: %s", who)
		}
		if got := balance(s); got != 10_00 {
			t.Fatalf("wallet %d cents after the reversal, want 1000 (refunded once)", got)
		}
		o, err := h.admin(ctx, "ledger", "transfers", "--account", "merchant:"+h.creds.Merchant, "--json")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(o, string(pay.Tx)); n != 2 { // the payment and one refund
			t.Fatalf("%d transfers of %s, want the payment and one refund:\n%s", n, pay.Tx, o)
		}
	})

	if o, err := h.admin(ctx, "ledger", "check"); err != nil {
		t.Fatalf("ledger check: %v\n%s", err, o)
	}
}

// rawTerminal is a terminal's MQTT session, sending hand-made requests.
type rawTerminal struct {
	id     string
	client paho.Client
	mu     sync.Mutex
	resps  map[protocol.TxID]chan *protocol.Response
	acks   chan *protocol.JournalAck
}

func dialTerminal(t *testing.T, broker string, tc Terminal) *rawTerminal {
	t.Helper()
	rt := &rawTerminal{id: tc.ID, resps: map[protocol.TxID]chan *protocol.Response{}, acks: make(chan *protocol.JournalAck, 16)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(tc.ID).SetUsername(tc.ID).SetPassword(tc.Password).
		SetCleanSession(true).SetAutoReconnect(false)
	rt.client = paho.NewClient(o)
	if tok := rt.client.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect: %v", tc.ID, tok.Error())
	}
	t.Cleanup(func() { rt.client.Disconnect(100) })
	filters := map[string]byte{protocol.Topic(protocol.ChanResponse, tc.ID): 1, protocol.Topic(protocol.ChanJournalAck, tc.ID): 1}
	if tok := rt.client.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		if strings.HasSuffix(m.Topic(), string(protocol.ChanJournalAck)) {
			var a protocol.JournalAck
			if protocol.Decode(m.Payload(), &a) == nil {
				rt.acks <- &a
			}
			return
		}
		var r protocol.Response
		if protocol.Decode(m.Payload(), &r) != nil {
			return
		}
		rt.mu.Lock()
		ch := rt.resps[r.Tx]
		rt.mu.Unlock()
		if ch != nil {
			select {
			case ch <- &r:
			default:
			}
		}
	}); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: subscribe: %v", tc.ID, tok.Error())
	}
	return rt
}

// sendAll publishes every request at once from its terminal and returns
// the answers in order.
func sendAll(t *testing.T, terms []*rawTerminal, reqs []*protocol.Request) []*protocol.Response {
	t.Helper()
	byID := map[string]*rawTerminal{}
	for _, rt := range terms {
		byID[rt.id] = rt
	}
	chans := make([]chan *protocol.Response, len(reqs))
	for i, r := range reqs {
		rt := byID[r.Terminal]
		chans[i] = make(chan *protocol.Response, 1)
		rt.mu.Lock()
		rt.resps[r.Tx] = chans[i]
		rt.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, r := range reqs {
		payload, err := protocol.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			byID[r.Terminal].client.Publish(protocol.Topic(protocol.ChanRequest, r.Terminal), 1, false, payload).Wait()
		}()
	}
	wg.Wait()
	out := make([]*protocol.Response, len(reqs))
	for i, ch := range chans {
		select {
		case out[i] = <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer to %s at %s", reqs[i].Tx, reqs[i].Terminal)
		}
	}
	return out
}

// journal publishes e n times back to back and returns the acks, waiting
// until every delivery is acknowledged (an authorizer that could not
// apply it yet sends none: the entry is sent again, as the terminal's
// outbox does).
func (rt *rawTerminal) journal(t *testing.T, e *protocol.JournalEntry, n int) []*protocol.JournalAck {
	t.Helper()
	payload, err := protocol.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		rt.client.Publish(protocol.Topic(protocol.ChanJournal, rt.id), 1, false, payload)
	}
	var acks []*protocol.JournalAck
	deadline := time.After(60 * time.Second)
	for len(acks) < n {
		select {
		case a := <-rt.acks:
			acks = append(acks, a)
		case <-time.After(5 * time.Second):
			rt.client.Publish(protocol.Topic(protocol.ChanJournal, rt.id), 1, false, payload)
			n++ // that delivery is acknowledged too
		case <-deadline:
			t.Fatalf("%d of %d journal deliveries acknowledged", len(acks), n)
		}
	}
	return acks
}

func makeCode(t *testing.T, s Device, seq uint16) string {
	t.Helper()
	code, err := protocol.MakeCode(s.Certificate, ed25519.PrivateKey(s.DeviceKey), protocol.PurposePay, time.Now(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func payRequest(t *testing.T, terminal string, s Device, seq uint16, amount int64) *protocol.Request {
	t.Helper()
	return payWithCode(t, terminal, makeCode(t, s, seq), amount)
}

func payWithCode(t *testing.T, terminal, code string, amount int64) *protocol.Request {
	t.Helper()
	tx, err := protocol.NewTxID(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.Request{Op: protocol.OpPay, Tx: tx, Terminal: terminal, At: time.Now(), Amount: amount,
		Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}}
}

// metricSum sums the samples of the lines of url's Prometheus text that
// start with prefix.
func metricSum(t *testing.T, url, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", url, sc.Text(), err)
			}
			sum += v
		}
	}
	return sum
}

// TestScale: one run measures the echo, SQLite on one authorizer and one
// and two authorizers on a throw-away PostgreSQL (fsync on), after a
// warm-up, and prints the table; every step's ledger reconciles.
func TestScale(t *testing.T) {
	bin := needCluster(t)
	var out strings.Builder
	rows, err := Scale(context.Background(), ScaleOptions{Bin: bin, Dir: t.TempDir(), Students: 10, Terminals: 2,
		Load: Load{Concurrency: 4, Payments: 40, Warmup: 500 * time.Millisecond}, AuthTimeout: 30 * time.Second,
		Authorizers: []int{1, 2}, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bare echo (no wallet)", "SQLite, 1 authorizer", "PostgreSQL, 1 authorizer", "PostgreSQL, 2 authorizers"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.Name != want[i] || r.Result.Sent != 40 || r.Result.Answered != 40 {
			t.Fatalf("row %d: %s: sent %d, answered %d", i, r.Name, r.Result.Sent, r.Result.Answered)
		}
		if i == 0 {
			continue
		}
		// The warm-up's payments are in the ledger and were seen approved.
		if tl := r.Tally; !tl.CheckOK || len(tl.Missing) != 0 || len(tl.LateCharges) != 0 || tl.Payments != tl.Seen || tl.Payments <= 40 {
			t.Fatalf("%s: tally %+v", r.Name, tl)
		}
		if !strings.Contains(out.String(), fmt.Sprintf("%-26s", r.Name)) {
			t.Fatalf("table has no line for %s", r.Name)
		}
	}
}
