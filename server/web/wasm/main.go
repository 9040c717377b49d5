//go:build js && wasm

// Command wasm is the web wallet's WebAssembly build of package protocol:
// the page lays out and finishes payment and identity codes, classifies and
// parses scanned texts, and decodes QR codes from camera frames with the same
// Go code the terminals and the authorizer run, so the two can never drift.
// The device key stays in WebCrypto: Go builds the bytes to sign, the page
// signs them, Go assembles the code.
package main

import (
	"encoding/base64"
	"syscall/js"
	"time"

	"campuspay/protocol"
	"campuspay/server/web/qrscan"
)

func main() {
	api := js.Global().Get("Object").New()
	api.Set("codeBody", js.FuncOf(codeBody))
	api.Set("finishCode", js.FuncOf(finishCode))
	api.Set("classify", js.FuncOf(classify))
	api.Set("parseMerchantQR", js.FuncOf(parseMerchantQR))
	api.Set("decodeQR", js.FuncOf(decodeQR))
	api.Set("encodeQR", js.FuncOf(encodeQR))
	api.Set("parseYuan", js.FuncOf(parseYuan))
	api.Set("formatCents", js.FuncOf(formatCents))
	api.Set("codeValiditySeconds", int(protocol.CodeValidity/time.Second))
	api.Set("reasons", reasonTable())
	api.Set("labels", labelTable())
	js.Global().Set("campuspay", api)
	if cb := js.Global().Get("onCampuspayReady"); cb.Type() == js.TypeFunction {
		cb.Invoke()
	}
	select {}
}

func result(v map[string]any) any { return js.ValueOf(v) }

func fail(err error) any {
	r := protocol.AsReason(err)
	if r == protocol.ErrInternal {
		return result(map[string]any{"error": err.Error()})
	}
	return result(map[string]any{"error": r.Code, "message_zh": r.ZH, "message_en": r.EN})
}

// codeBody(certB64, purpose "pay"|"identity", unixSeconds, seq) → {body, msg} (base64)
func codeBody(_ js.Value, a []js.Value) any {
	if len(a) != 4 {
		return result(map[string]any{"error": "codeBody: 4 arguments"})
	}
	cert, err := base64.StdEncoding.DecodeString(a[0].String())
	if err != nil {
		return fail(err)
	}
	p := protocol.PurposePay
	if a[1].String() == "identity" {
		p = protocol.PurposeIdentity
	}
	body, msg, err := protocol.CodeBody(cert, p, time.Unix(int64(a[2].Float()), 0), uint16(a[3].Int()))
	if err != nil {
		return fail(err)
	}
	return result(map[string]any{
		"body": base64.StdEncoding.EncodeToString(body),
		"msg":  base64.StdEncoding.EncodeToString(msg),
	})
}

// finishCode(bodyB64, sigB64) → {text}
func finishCode(_ js.Value, a []js.Value) any {
	if len(a) != 2 {
		return result(map[string]any{"error": "finishCode: 2 arguments"})
	}
	body, err1 := base64.StdEncoding.DecodeString(a[0].String())
	sig, err2 := base64.StdEncoding.DecodeString(a[1].String())
	if err1 != nil || err2 != nil {
		return result(map[string]any{"error": "finishCode: bad base64"})
	}
	text, err := protocol.FinishCode(body, sig)
	if err != nil {
		return fail(err)
	}
	return result(map[string]any{"text": text})
}

func classify(_ js.Value, a []js.Value) any {
	if len(a) != 1 {
		return "unknown"
	}
	return protocol.Classify(a[0].String()).String()
}

// parseMerchantQR(text) → {merchant, terminal, campus} or {error}. The
// server verifies the signature when paying; the page only reads it.
func parseMerchantQR(_ js.Value, a []js.Value) any {
	if len(a) != 1 {
		return result(map[string]any{"error": "parseMerchantQR: 1 argument"})
	}
	m, err := protocol.ParseMerchantQR(protocol.Trim(a[0].String()))
	if err != nil {
		return fail(err)
	}
	return result(map[string]any{"merchant": m.Merchant, "terminal": m.Terminal, "campus": m.Campus})
}

// decodeQR(rgba Uint8ClampedArray, width, height) → text or "".
func decodeQR(_ js.Value, a []js.Value) any {
	if len(a) != 3 {
		return ""
	}
	w, h := a[1].Int(), a[2].Int()
	if w <= 0 || h <= 0 || w*h > 4096*4096 {
		return ""
	}
	rgba := make([]byte, w*h*4)
	if n := js.CopyBytesToGo(rgba, a[0]); n != len(rgba) {
		return ""
	}
	text, _ := qrscan.DecodeRGBA(rgba, w, h)
	return text
}

func parseYuan(_ js.Value, a []js.Value) any {
	if len(a) != 1 {
		return -1
	}
	c, err := protocol.ParseYuan(a[0].String())
	if err != nil {
		return -1
	}
	return float64(c)
}

func formatCents(_ js.Value, a []js.Value) any {
	if len(a) != 1 {
		return ""
	}
	return protocol.FormatCents(int64(a[0].Float()))
}

// encodeQR(text) → {size, modules: Uint8Array (size*size, 1 = dark)} at
// error-correction level M, the level the README promises for codes.
func encodeQR(_ js.Value, a []js.Value) any {
	if len(a) != 1 {
		return result(map[string]any{"error": "encodeQR: 1 argument"})
	}
	size, mods, err := qrscan.Encode(a[0].String())
	if err != nil {
		return fail(err)
	}
	arr := js.Global().Get("Uint8Array").New(len(mods))
	js.CopyBytesToJS(arr, mods)
	return result(map[string]any{"size": size, "modules": arr})
}

// reasonTable is protocol's reason table, code → {zh, en}: the page names
// every decline exactly as the authorizer and the terminals do.
func reasonTable() any {
	m := map[string]any{}
	for _, r := range protocol.Reasons() {
		m[r.Code] = map[string]any{"zh": r.ZH, "en": r.EN}
	}
	return js.ValueOf(m)
}

// labelTable is protocol's labels of channels, statuses and record kinds,
// key ("channel:balance") → {zh, en}, as the CSV export names them.
func labelTable() any {
	m := map[string]any{}
	for k, l := range protocol.Labels() {
		m[k] = map[string]any{"zh": l.ZH, "en": l.EN}
	}
	return js.ValueOf(m)
}
