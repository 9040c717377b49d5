package protocol

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// requestSeeds are requests in the encoders' form and near it.
var requestSeeds = []string{
	`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"code","text":"CP1:6BF.PQ$ +AB/*%"}}`,
	`{"v":1,"op":"hold","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00.123456789+08:00","cred":{"kind":"account","text":"20240001"},"secret":"c2VjcmV0"}`,
	`{"v":1,"op":"capture","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":350,"ml":12000}`,
	`{"v":1,"op":"notices","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","cursor":18446744073709551615}`,
	`{"cred":{"text":"x","kind":"card"},"v":1,"terminal":"T1","op":"pay","amount":-9223372036854775808,"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","at":"2026-09-01T04:30:00Z"}`,
	// Left to the strict path: each must give the same result there.
	`{"v":1,"op":"pay","amount":-0}`,
	`{"v":1,"op":"pay","amount":1e2}`,
	`{"v":1,"op":"pay","amount":1.0}`,
	`{"v":1,"op":"pay","amount":0100}`,
	`{"v":1,"op":"pay","amount":9223372036854775808}`,
	`{"v":1,"op":"pay","cursor":-1}`,
	`{"v":1,"v":2}`,
	`{"v":1,"V":2}`,
	`{"v":1,"cred":null}`,
	`{"v":1,"cred":{}}`,
	`{"v":1,"cred":{"kind":"code","kind":"card"}}`,
	`{"v":1,"terminal":"T\u0031"}`,
	`{"v":1,"terminal":"食堂"}`,
	`{ "v":1}`,
	`{"v":1} `,
	`{"v":1}}`,
	`{}`,
	`{"v":1,"at":"2026-09-01 04:30:00Z"}`,
	`{"v":1,"at":"2026-09-01T04:30:00Z","extra":1}`,
}

// FuzzDecodeRequestFast: whatever the fast path accepts, the strict path
// accepts with the same Request; what it refuses it leaves untouched.
func FuzzDecodeRequestFast(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		before := Request{V: 7, Op: "x", Terminal: "keep", Amount: 3, Cred: &Credential{Kind: "k"}}
		fast := before
		fast.Cred = &Credential{Kind: "k"}
		if !decodeRequestFast(b, &fast) {
			if !reflect.DeepEqual(fast, before) {
				t.Fatalf("refused %q but changed the request: %+v", b, fast)
			}
			return
		}
		strict := before
		strict.Cred = &Credential{Kind: "k"}
		if err := decodeJSON(b, &strict); err != nil {
			t.Fatalf("fast path accepted %q, the strict path refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%q: fast path %+v (cred %+v), strict path %+v (cred %+v)", b, fast, fast.Cred, strict, strict.Cred)
		}
	})
}

// The fast path takes what the encoder writes; otherwise it would never
// run. Decode gives the same request either way.
func TestDecodeRequestFastTakesEncoded(t *testing.T) {
	at := time.Date(2026, 9, 1, 4, 30, 0, 123456789, time.UTC)
	for _, r := range []Request{
		{Op: OpPay, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "T-01", At: at, Amount: 1250, Cred: &Credential{Kind: CredCode, Text: "CP1:" + strings.Repeat("6BF.PQ$ +AB/*%:-", 8)}},
		{Op: OpPay, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "T-01", At: at.In(time.FixedZone("CST", 8*3600)), Amount: 1, Cred: &Credential{Kind: CredCard, Text: "04A1B2C3"}},
		{Op: OpCapture, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "S-9", At: at, Amount: 300, ML: 12000},
		{Op: OpQuery, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "T-01", At: at},
	} {
		b, err := Encode(&r)
		if err != nil {
			t.Fatal(err)
		}
		var fast, strict Request
		if !decodeRequestFast(b, &fast) {
			t.Fatalf("fast path refused the encoder's %s", b)
		}
		if err := decodeJSON(b, &strict); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%s: fast %+v, strict %+v", b, fast, strict)
		}
		var got Request
		if err := Decode(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
}

// Decode refuses through the fast path what it refused before: a wrong
// version, a request that fails validation, and the strict path's cases.
func TestDecodeRequestRefusals(t *testing.T) {
	for _, s := range requestSeeds[5:] {
		var r Request
		if err := Decode([]byte(s), &r); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	var r Request
	if err := Decode([]byte(strings.Replace(requestSeeds[0], `"v":1`, `"v":2`, 1)), &r); err == nil {
		t.Error("version 2 accepted")
	}
	if err := Decode([]byte(strings.Replace(requestSeeds[0], `"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV"`, `"tx":"nope"`, 1)), &r); err == nil {
		t.Error("a bad tx accepted")
	}
}
