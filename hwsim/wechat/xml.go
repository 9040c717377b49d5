package wechat

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

const maxFields = 64

// ParseXML parses a flat WeChat Pay v2 document (<xml><k>v</k>...</xml>)
// into a map. Nested elements, repeated fields, DTDs, stray text and a
// second root are refused.
func ParseXML(r io.Reader) (map[string]string, error) {
	d := xml.NewDecoder(r)
	fields := map[string]string{}
	depth, done := 0, false
	var name string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if !done {
				return nil, errors.New("wechatsim: incomplete <xml> document")
			}
			return fields, nil
		}
		if err != nil {
			return nil, fmt.Errorf("wechatsim: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (done || t.Name.Local != "xml") {
				return nil, fmt.Errorf("wechatsim: root <%s>, want one <xml>", t.Name.Local)
			}
			if depth >= 2 {
				return nil, fmt.Errorf("wechatsim: nested <%s>", t.Name.Local)
			}
			if depth == 1 {
				name = t.Name.Local
				text.Reset()
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				done = true
				continue
			}
			if _, dup := fields[name]; dup {
				return nil, fmt.Errorf("wechatsim: repeated <%s>", name)
			}
			if len(fields) == maxFields {
				return nil, errors.New("wechatsim: too many fields")
			}
			fields[name] = text.String()
		case xml.CharData:
			if depth == 2 {
				text.Write(t)
			} else if len(bytes.TrimSpace(t)) != 0 {
				return nil, errors.New("wechatsim: text outside a field")
			}
		case xml.Directive:
			return nil, errors.New("wechatsim: DTDs are not accepted")
		}
	}
}

// encodeXML writes fields the way WeChat does: each value in CDATA, unless
// CDATA would not carry it unchanged (the terminator, or a carriage return,
// which XML parsers turn into a line feed).
func encodeXML(fields map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, k := range sortedKeys(fields) {
		v := fields[k]
		b.WriteString("<" + k + ">")
		if strings.Contains(v, "]]>") || strings.ContainsRune(v, '\r') {
			xml.EscapeText(&b, []byte(v))
		} else {
			b.WriteString("<![CDATA[" + v + "]]>")
		}
		b.WriteString("</" + k + ">")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// Sign is the v2 HMAC-SHA256 sign: non-empty fields except sign, sorted,
// "k=v&...&key=API_KEY", keyed with the API key, upper-case hex.
func Sign(fields map[string]string, apiKey string) string {
	var b strings.Builder
	for _, k := range sortedKeys(fields) {
		if k != "sign" && fields[k] != "" {
			b.WriteString(k + "=" + fields[k] + "&")
		}
	}
	b.WriteString("key=" + apiKey)
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write([]byte(b.String()))
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
