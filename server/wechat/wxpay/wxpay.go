// Package wxpay is the wire format of WeChat Pay's v2 API: flat XML
// documents (<xml><k>v</k>...</xml>) signed with HMAC-SHA256 over the
// sorted fields. The authorizer's client (server/wechat) and the
// simulator (hwsim/wechat) both speak it through this one codec; the
// signing guide's worked example in the tests pins it to WeChat's.
package wxpay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// MaxFields bounds a document's fields; v2 messages have about 20.
const MaxFields = 64

// Decode parses a flat v2 document, <xml><k>v</k>...</xml>, into a map.
// It refuses nested elements, repeated fields, DTDs, text outside fields,
// more than MaxFields fields and anything after the root element.
func Decode(r io.Reader) (map[string]string, error) {
	d := xml.NewDecoder(r)
	m := map[string]string{}
	var (
		depth int
		done  bool
		key   string
		val   strings.Builder
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if !done {
				return nil, errors.New("xml: no complete <xml> document")
			}
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0 && (done || t.Name.Local != "xml"):
				return nil, fmt.Errorf("xml: unexpected root <%s>", t.Name.Local)
			case depth == 1:
				key = t.Name.Local
				val.Reset()
			case depth >= 2:
				return nil, fmt.Errorf("xml: nested element <%s> in <%s>", t.Name.Local, key)
			}
			depth++
		case xml.EndElement:
			depth--
			switch depth {
			case 1:
				if _, dup := m[key]; dup {
					return nil, fmt.Errorf("xml: repeated field <%s>", key)
				}
				if len(m) == MaxFields {
					return nil, fmt.Errorf("xml: more than %d fields", MaxFields)
				}
				m[key] = val.String()
			case 0:
				done = true
			}
		case xml.CharData:
			if depth == 2 {
				val.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("xml: text outside a field")
			}
		case xml.Directive:
			return nil, errors.New("xml: directives (DTD) not accepted")
		}
	}
}

// Encode writes fields as a flat v2 document, in name order, each value
// as escaped text.
func Encode(fields map[string]string) []byte { return encode(fields, false) }

// EncodeCDATA writes fields the way WeChat itself does: each value in
// CDATA, unless CDATA would not carry it unchanged (the terminator, or a
// carriage return, which XML parsers turn into a line feed).
func EncodeCDATA(fields map[string]string) []byte { return encode(fields, true) }

func encode(fields map[string]string, cdata bool) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, k := range sortedKeys(fields) {
		v := fields[k]
		b.WriteString("<" + k + ">")
		if cdata && !strings.Contains(v, "]]>") && !strings.ContainsRune(v, '\r') {
			b.WriteString("<![CDATA[" + v + "]]>")
		} else {
			xml.EscapeText(&b, []byte(v))
		}
		b.WriteString("</" + k + ">")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// Sign computes the v2 HMAC-SHA256 sign of fields: the non-empty fields
// other than sign, sorted, as "k=v&...&key=API_KEY", keyed with the API
// key, in upper-case hex.
func Sign(fields map[string]string, apiKey string) string {
	m := hmac.New(sha256.New, []byte(apiKey))
	for _, k := range sortedKeys(fields) {
		if k == "sign" || fields[k] == "" {
			continue
		}
		io.WriteString(m, k+"="+fields[k]+"&")
	}
	io.WriteString(m, "key="+apiKey)
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// Verify reports whether fields carry the right sign for apiKey, compared
// in constant time.
func Verify(fields map[string]string, apiKey string) bool {
	return hmac.Equal([]byte(fields["sign"]), []byte(Sign(fields, apiKey)))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
