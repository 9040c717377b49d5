package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// MarshalResponse is json.Marshal(r), byte for byte (FuzzMarshalResponse),
// without reflection when every string is plain (printable ASCII other
// than the characters encoding/json escapes, or valid UTF-8 beyond
// ASCII other than U+2028 and U+2029) and the server time is one
// encoding/json can write. The authorizer writes a response for every
// payment twice: into the payment's record, and to the terminal.
func MarshalResponse(r *Response) ([]byte, error) {
	if b, ok := appendResponse(make([]byte, 0, 320), r); ok {
		return b, nil
	}
	return json.Marshal(r)
}

// appendResponse appends r as encoding/json writes it, or reports false
// where it might write something else.
func appendResponse(b []byte, r *Response) ([]byte, bool) {
	ok := true
	str := func(name, s string, omitEmpty bool) {
		if omitEmpty && s == "" {
			return
		}
		b = append(b, name...)
		b, ok = appendPlainString(b, s, ok)
	}
	num := func(name string, n int64, omitEmpty bool) {
		if omitEmpty && n == 0 {
			return
		}
		b = append(b, name...)
		b = strconv.AppendInt(b, n, 10)
	}
	num(`{"v":`, int64(r.V), false)
	str(`,"op":`, string(r.Op), false)
	str(`,"tx":`, string(r.Tx), false)
	str(`,"terminal":`, r.Terminal, false)
	str(`,"status":`, string(r.Status), false)
	str(`,"code":`, r.Code, true)
	str(`,"message_zh":`, r.MessageZH, true)
	str(`,"message_en":`, r.MessageEN, true)
	num(`,"amount":`, r.Amount, true)
	str(`,"channel":`, r.Channel, true)
	num(`,"hold":`, r.Hold, true)
	if r.Balance != nil {
		num(`,"balance":`, *r.Balance, false)
	}
	str(`,"user":`, r.User, true)
	b = append(b, `,"server_time":"`...)
	var err error
	if b, err = r.ServerTime.AppendText(b); err != nil { // json.Marshal fails the same way
		return nil, false
	}
	b = append(b, `"}`...)
	return b, ok
}

// appendPlainString appends s quoted, and ok if encoding/json would
// write it the same (nothing to escape); ok stays false once false.
func appendPlainString(b []byte, s string, ok bool) ([]byte, bool) {
	b = append(b, '"')
	for i := 0; i < len(s) && ok; {
		c := s[i]
		if c < utf8.RuneSelf {
			ok = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		ok = r != utf8.RuneError && r != '\u2028' && r != '\u2029'
		i += n
	}
	b = append(b, s...)
	return append(b, '"'), ok
}
