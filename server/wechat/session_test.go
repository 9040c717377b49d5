package wechat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeSession(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"openid":"o1","session_key":"k"}`, nil},
		{`{"errcode":40029,"errmsg":"invalid code"}`, ErrLoginCodeInvalid},
		{`{"errcode":40163,"errmsg":"code been used"}`, ErrLoginCodeUsed},
		{`{"errcode":-1}`, ErrUnavailable},
		{`{"errcode":40125}`, ErrRejected},
		{`{}`, ErrUnavailable},
		{`not json`, ErrUnavailable},
	} {
		_, err := decodeSession(iotest.OneByteReader(strings.NewReader(tc.in)))
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("decodeSession(%s) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func FuzzDecodeSession(f *testing.F) {
	f.Add([]byte(`{"openid":"o1","session_key":"k"}`))
	f.Add([]byte(`{"errcode":40029}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := decodeSession(bytes.NewReader(in))
		if err == nil && s.OpenID == "" {
			t.Fatal("accepted an answer without openid")
		}
	})
}
