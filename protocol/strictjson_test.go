package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type strictProbe struct {
	Amount int64             `json:"amount"`
	QR     string            `json:"qr,omitempty"`
	Inner  *strictInner      `json:"inner,omitempty"`
	List   []strictInner     `json:"list,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	At     time.Time         `json:"at,omitempty"`
	Skip   string            `json:"-"`
	strictEmbedded
}

type strictInner struct {
	Kind string `json:"kind"`
}

type strictEmbedded struct {
	Note string `json:"note"`
}

// Issue 13 item 7: member names are case-sensitive and unique, at every
// depth; everything encoding/json accepts otherwise still passes.
func TestCheckJSONNames(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"amount":1}`, true},
		{`{"amount":1,"qr":"x","inner":{"kind":"a"},"list":[{"kind":"b"},{"kind":"c"}],"labels":{"A":"1","a":"2"},"at":"2026-01-01T00:00:00Z","note":"n"}`, true},
		{`{}`, true},
		{`null`, true},
		{`{"AMOUNT":1}`, false},
		{`{"Amount":1}`, false},
		{`{"amount":100,"amount":1}`, false},
		{`{"amount":1,"\u0061mount":2}`, false}, // the same name escaped
		{`{"\u0041MOUNT":1}`, false},
		{`{"inner":{"KIND":"a"}}`, false},
		{`{"inner":{"kind":"a","kind":"b"}}`, false},
		{`{"list":[{"kind":"a"},{"Kind":"b"}]}`, false},
		{`{"labels":{"a":"1","a":"2"}}`, false},
		{`{"NOTE":"n"}`, false},
		{"{\"inner\":{\"\u212aind\":\"a\"}}", false}, // Kelvin sign: encoding/json reads it as "kind"
		{"{\"label\u017f\":{}}", false},              // long s: encoding/json reads it as "labels"
		{`{"Skip":"x"}`, true},                       // "-" fields are not members: left to DisallowUnknownFields
		{`{"amount":1} {}`, false},                   // trailing data
		{`[{"a":1,"a":2}]`, false},                   // duplicates anywhere
		{`{"x":{"y":{"z":1,"z":2}}}`, false},         // in values of unknown members too
	} {
		var p strictProbe
		err := CheckJSONNames([]byte(tc.in), &p)
		if (err == nil) != tc.ok {
			t.Errorf("CheckJSONNames(%s) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// Decode refuses the same for every MQTT message.
func TestDecodeStrictNames(t *testing.T) {
	good := `{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"card","text":"04A1"}}`
	var r Request
	if err := Decode([]byte(good), &r); err != nil || r.Amount != 100 {
		t.Fatalf("Decode(good) = %v, %+v", err, r)
	}
	for _, bad := range []string{
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","AMOUNT":100,"cred":{"kind":"card","text":"04A1"}}`,
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"amount":1,"cred":{"kind":"card","text":"04A1"}}`,
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"card","Text":"04A1"}}`,
		`{"V":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"card","text":"04A1"}}`,
	} {
		var r Request
		if err := Decode([]byte(bad), &r); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Decode(%s) = %v, want BAD_REQUEST", bad, err)
		}
	}
}

// FuzzCheckJSONNames: whatever CheckJSONNames and encoding/json both
// accept decodes to what an exact-name, duplicate-free reading gives.
// Seeds: testdata/fuzz/FuzzCheckJSONNames.
func FuzzCheckJSONNames(f *testing.F) {
	f.Add([]byte(`{"amount":1,"qr":"x","inner":{"kind":"a"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p strictProbe
		err := CheckJSONNames(b, &p)
		if json.Valid(b) {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber() // names are compared, not whether a number fits a float64
			if ref := refCheck(d, reflect.TypeFor[*strictProbe](), 0); (ref == nil) != (err == nil) {
				t.Fatalf("CheckJSONNames(%q) = %v, the token-based reading says %v", b, err, ref)
			}
		}
		if err != nil || json.Unmarshal(b, &p) != nil {
			return
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(b, &members) != nil || members == nil {
			return
		}
		var want strictProbe
		for name, raw := range members {
			var dst any
			switch name {
			case "amount":
				dst = &want.Amount
			case "qr":
				dst = &want.QR
			case "inner":
				dst = &want.Inner
			case "list":
				dst = &want.List
			case "labels":
				dst = &want.Labels
			case "at":
				dst = &want.At
			case "note":
				dst = &want.Note
			default:
				continue
			}
			if err := json.Unmarshal(raw, dst); err != nil {
				t.Fatalf("member %q of accepted %q: %v", name, b, err)
			}
		}
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("accepted %q decodes to %+v, exact names give %+v", b, p, want)
		}
	})
}

// refCheck is CheckJSONNames written plainly over json.Decoder tokens: the
// fuzz target's reference for valid JSON.
func refCheck(d *json.Decoder, t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("too deep")
	}
	for t != nil && t.Kind() == reflect.Pointer && !opaque(t) {
		t = t.Elem()
	}
	if opaque(t) {
		t = nil
	}
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for d.More() {
			if err := refCheck(d, elem, depth+1); err != nil {
				return err
			}
		}
		_, err := d.Token()
		return err
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			tok, err := d.Token()
			if err != nil {
				return err
			}
			name := tok.(string)
			if seen[name] {
				return errors.New("duplicate")
			}
			seen[name] = true
			var ft reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Map:
				ft = t.Elem()
			case t.Kind() == reflect.Struct:
				for i := 0; i < t.NumField(); i++ {
					f := t.Field(i)
					n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
					if f.Anonymous {
						n = "note" // strictProbe's one embedded field
						f.Type = reflect.TypeFor[string]()
					}
					if n == "-" {
						continue
					}
					if n == name {
						ft = f.Type
					} else if strings.EqualFold(n, name) {
						return errors.New("case")
					}
				}
			}
			if err := refCheck(d, ft, depth+1); err != nil {
				return err
			}
		}
		_, err := d.Token()
		return err
	}
	return nil
}

// BenchmarkDecodeRequest measures Decode of a payment request (with the
// name check) and reports it as a ratio to a plain json.Unmarshal of the
// same bytes measured in the same run.
func BenchmarkDecodeRequest(b *testing.B) {
	in := []byte(`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"card","text":"04A1"}}`)
	const n = 2000
	start := time.Now()
	for range n {
		var r Request
		if err := json.Unmarshal(in, &r); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Since(start) / n
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var r Request
		if err := Decode(in, &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed()/time.Duration(b.N))/float64(base), "x_json_unmarshal")
}
