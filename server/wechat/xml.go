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

// maxFields bounds a document's fields; v2 messages have about 20.
const maxFields = 64

// decodeXML parses a flat v2 document, <xml><k>v</k>...</xml>, into a map.
// It refuses nested elements, repeated fields, DTDs, text outside fields and
// anything after the root element.
func decodeXML(r io.Reader) (map[string]string, error) {
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
				if len(m) == maxFields {
					return nil, fmt.Errorf("xml: more than %d fields", maxFields)
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

// encodeXML writes fields as a flat v2 document, in name order.
func encodeXML(fields map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, k := range sortedKeys(fields) {
		b.WriteString("<" + k + ">")
		xml.EscapeText(&b, []byte(fields[k]))
		b.WriteString("</" + k + ">")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// sign computes the v2 HMAC-SHA256 sign of fields.
func sign(fields map[string]string, apiKey string) string {
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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
