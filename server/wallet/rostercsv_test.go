package wallet_test

import (
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

func TestParseRoster(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		entries int
		bad     []int // lines of the errors
		lines   int
	}{
		{"header only", "学号,姓名,身份证号,手机号,类别,校区,卡号,初始密码\n", 0, nil, 0},
		{"empty", "", 0, nil, 0},
		{"good", "h\n2024001,李娜,id,13800000001,本科,yungu,04A1,pw\n2024002,王强,id,13800000002,本科,云谷,,pw\n", 2, nil, 2},
		{"short line", "h\n2024001,李娜,id\n2024002,王强,id,13800000002,本科,云谷,,pw\n", 1, []int{2}, 2},
		{"bad quote", "h\n\"2024001,李娜\n", 0, []int{2}, 1},
		{"CRLF and spaces", "h\r\n 2024001 , 李娜,id,138,本科,yungu,04A1,pw\r\n", 1, nil, 1},
	}
	for _, tc := range tests {
		es, bad, lines, err := wallet.ParseRoster(strings.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []int
		for _, b := range bad {
			got = append(got, b.Line)
			if protocol.AsReason(b.Err) == protocol.ErrInternal {
				t.Errorf("%s: line %d without a reason: %v", tc.name, b.Line, b.Err)
			}
		}
		if len(es) != tc.entries || lines != tc.lines || len(got) != len(tc.bad) || (len(got) > 0 && got[0] != tc.bad[0]) {
			t.Errorf("%s: %d entries, bad %v, %d lines; want %d, %v, %d", tc.name, len(es), got, lines, tc.entries, tc.bad, tc.lines)
		}
	}
	es, _, _, _ := wallet.ParseRoster(strings.NewReader("h\n 2024001 ,李娜,id,138,本科,yungu,04A1,pw\n"))
	if es[0].StudentNo != "2024001" || es[0].Line != 2 || es[0].Password != "pw" {
		t.Fatalf("entry %+v", es[0])
	}
}

// FuzzParseRoster: any uploaded file is read without a panic, every byte
// accounted for as an entry or a line error.
func FuzzParseRoster(f *testing.F) {
	for _, s := range []string{"h\n2024001,李娜,id,13800000001,本科,yungu,04A1,pw\n", "\"", "a,b\n\"x\"\"y\",z\n", "h\n,,,,,,,\n", "\xff\xfe,\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		es, bad, lines, err := wallet.ParseRoster(strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if len(es)+len(bad) > lines {
			t.Fatalf("%d entries + %d errors > %d lines", len(es), len(bad), lines)
		}
		for _, e := range es {
			if e.Line <= 0 {
				t.Fatalf("entry without a line: %+v", e)
			}
		}
	})
}
