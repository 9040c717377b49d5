package bank_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"campuspay/server/bank"
)

func TestParseStatement(t *testing.T) {
	good, err := os.ReadFile("testdata/statement.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := bank.ParseStatement(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if st.Date != "2026-11-30" || len(st.Entries) != 3 || st.Entries[0].Signed() != 5000 || st.Entries[1].Signed() != -1500 {
		t.Fatalf("statement %+v", st)
	}
	for _, c := range []struct{ name, body string }{
		{"not OK", `{"result":"FAIL","date":"2026-11-30","entries":[]}`},
		{"bad date", `{"result":"OK","date":"30/11/2026","entries":[]}`},
		{"unknown field", `{"result":"OK","date":"2026-11-30","entries":[],"x":1}`},
		{"zero amount", `{"result":"OK","date":"2026-11-30","entries":[{"ref":"r","key":"k","op":"debit","amount":0,"time":"2026-11-30T02:00:00Z"}]}`},
		{"unknown op", `{"result":"OK","date":"2026-11-30","entries":[{"ref":"r","key":"k","op":"gift","amount":1,"time":"2026-11-30T02:00:00Z"}]}`},
		{"key twice", `{"result":"OK","date":"2026-11-30","entries":[{"ref":"r","key":"k","op":"debit","amount":1,"time":"2026-11-30T02:00:00Z"},{"ref":"s","key":"k","op":"debit","amount":1,"time":"2026-11-30T02:00:00Z"}]}`},
		{"no time", `{"result":"OK","date":"2026-11-30","entries":[{"ref":"r","key":"k","op":"debit","amount":1}]}`},
		{"trailing data", `{"result":"OK","date":"2026-11-30","entries":[]} {}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := bank.ParseStatement(strings.NewReader(c.body)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzParseStatement(f *testing.F) {
	good, err := os.ReadFile("testdata/statement.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"result":"OK","date":"2026-11-30","entries":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := bank.ParseStatement(bytes.NewReader(b))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range st.Entries {
			if e.Amount <= 0 || seen[e.Key] || e.Signed() == 0 {
				t.Fatalf("accepted entry %+v", e)
			}
			seen[e.Key] = true
		}
	})
}
