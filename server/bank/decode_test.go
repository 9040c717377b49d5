package bank

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeResponse(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   error
	}{
		{200, `{"result":"OK"}`, nil},
		{200, `{"result":"OK","receipt":{"ref":"r","key":"k","op":"debit","amount":1,"time":"2026-11-30T08:00:00Z"}}`, nil},
		{200, `{"result":"MAYBE"}`, ErrUnavailable},
		{200, `{"result":"OK"} trailing`, ErrUnavailable},
		{200, `<html>`, ErrUnavailable},
		{402, `{"code":"INSUFFICIENT_FUNDS","message":"余额不足"}`, ErrInsufficientFunds},
		{404, `{"code":"UNKNOWN_CARD"}`, ErrUnknownCard},
		{422, `{"code":"MISMATCH","field":"shoe_size"}`, ErrUnavailable},
		{418, `{"code":"TEAPOT"}`, ErrUnavailable},
	} {
		_, err := decodeResponse(tc.status, iotest.OneByteReader(strings.NewReader(tc.body)))
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("decodeResponse(%d, %s) = %v, want %v", tc.status, tc.body, err, tc.want)
		}
	}
	_, err := decodeResponse(422, strings.NewReader(`{"code":"MISMATCH","field":"phone"}`))
	var me *MismatchError
	if !errors.As(err, &me) || me.Field != FieldPhone {
		t.Errorf("mismatch: %v", err)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(200, []byte(`{"result":"OK","receipt":{"ref":"r","key":"k","op":"debit","amount":1,"time":"2026-11-30T08:00:00Z"}}`))
	f.Add(422, []byte(`{"code":"MISMATCH","field":"name"}`))
	f.Add(402, []byte(`{"code":"INSUFFICIENT_FUNDS"}`))
	f.Add(200, []byte(`{"receipt":{"time":"bad"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		resp, err := decodeResponse(status, bytes.NewReader(body))
		if err == nil && (status != 200 || resp.Result != "OK") {
			t.Fatalf("accepted HTTP %d %q", status, body)
		}
	})
}

func TestMaskCard(t *testing.T) {
	if got := maskCard("6217001234000010"); got != "6217********0010" {
		t.Errorf("maskCard = %q", got)
	}
}
