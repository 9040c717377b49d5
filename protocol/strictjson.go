package protocol

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// CheckJSONNames refuses what encoding/json lets through but a money
// message must not carry: an object with the same member twice
// ({"amount":100,"amount":1} — which one counts depends on the parser; names
// are compared as encoding/json reads them, escapes undone and bytes that
// are not UTF-8 read as U+FFFD), and a
// member whose name matches a field of v's type only when case is ignored
// ({"AMOUNT":1} would set Amount). It walks the JSON text b alongside the
// type of v (a pointer to the value b decodes into) without decoding
// anything; names inside values decoded by their own UnmarshalJSON or
// UnmarshalText, and keys of maps, are only checked for duplicates.
// Syntax errors are reported too, but callers decode with encoding/json as
// well, which explains them better.
func CheckJSONNames(b []byte, v any) error {
	var t reflect.Type
	if v != nil {
		t = reflect.TypeOf(v)
	}
	sc := nameScanner{b: b}
	if err := sc.value(t, 0); err != nil {
		return err
	}
	if sc.ws(); sc.i != len(sc.b) {
		return errors.New("json: data after the value")
	}
	return nil
}

// maxJSONDepth bounds the nesting CheckJSONNames follows.
const maxJSONDepth = 64

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	errJSONSyntax   = errors.New("json: syntax error")
)

var opaqueCache sync.Map // reflect.Type → bool

// opaque reports whether values of t decode themselves (or t is unknown).
func opaque(t reflect.Type) bool {
	if t == nil {
		return true
	}
	if o, ok := opaqueCache.Load(t); ok {
		return o.(bool)
	}
	o := t.Kind() == reflect.Interface ||
		t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
	opaqueCache.Store(t, o)
	return o
}

// nameScanner walks JSON text without decoding values: it runs on every
// MQTT message and API body, so it allocates nothing for the names of
// ordinary objects (an escaped name is unquoted by encoding/json).
type nameScanner struct {
	b []byte
	i int
}

func (s *nameScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str consumes a string at s.i and returns its raw contents (between the
// quotes) and whether it has escapes.
func (s *nameScanner) str() (raw []byte, escaped bool, err error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, errJSONSyntax
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			s.i = j + 1
			return s.b[start:j], escaped, nil
		}
	}
	return nil, false, errJSONSyntax
}

func (s *nameScanner) value(t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("json: nested deeper than %d", maxJSONDepth)
	}
	for t != nil && t.Kind() == reflect.Pointer && !opaque(t) {
		t = t.Elem()
	}
	if t != nil && opaque(t) {
		t = nil
	}
	s.ws()
	if s.i >= len(s.b) {
		return errJSONSyntax
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		return s.object(t, depth)
	case '[':
		s.i++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		if s.ws(); s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(elem, depth+1); err != nil {
				return err
			}
			if s.ws(); s.i >= len(s.b) {
				return errJSONSyntax
			}
			s.i++
			switch s.b[s.i-1] {
			case ',':
			case ']':
				return nil
			default:
				return errJSONSyntax
			}
		}
	case '"':
		_, _, err := s.str()
		return err
	}
	start := s.i // a number, true, false or null
	for s.i < len(s.b) && !strings.ContainsRune(",]} \t\r\n", rune(s.b[s.i])) {
		s.i++
	}
	if s.i == start {
		return errJSONSyntax
	}
	return nil
}

func (s *nameScanner) object(t reflect.Type, depth int) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	var buf [16][]byte
	seen := buf[:0]
	if s.ws(); s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		name := raw
		if escaped || !utf8.Valid(raw) { // encoding/json reads bad UTF-8 as U+FFFD
			var u string
			if err := json.Unmarshal(s.b[s.i-len(raw)-2:s.i], &u); err != nil {
				return fmt.Errorf("json: member name: %w", err)
			}
			name = []byte(u)
		}
		for _, n := range seen {
			if bytes.Equal(n, name) {
				return fmt.Errorf("json: member %q appears twice", name)
			}
		}
		seen = append(seen, name)
		ft := elem
		if fields != nil {
			var known bool
			if ft, known = fields[string(name)]; !known {
				for f := range fields {
					if strings.EqualFold(f, string(name)) {
						return fmt.Errorf("json: member %q: names are case-sensitive, the field is %q", name, f)
					}
				}
			}
		}
		if s.ws(); s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSONSyntax
		}
		s.i++
		if err := s.value(ft, depth+1); err != nil {
			return err
		}
		if s.ws(); s.i >= len(s.b) {
			return errJSONSyntax
		}
		s.i++
		switch s.b[s.i-1] {
		case ',':
		case '}':
			return nil
		default:
			return errJSONSyntax
		}
	}
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the member names encoding/json decodes into struct
// type t (tags, exported fields, embedded structs promoted) with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(m, t, 0)
	fieldCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type, depth int) {
	if depth > 8 {
		return
	}
	var embedded []reflect.Type // promoted after t's own fields, which win
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	for _, et := range embedded {
		sub := map[string]reflect.Type{}
		addFields(sub, et, depth+1)
		for n, ft := range sub {
			if _, ok := m[n]; !ok {
				m[n] = ft
			}
		}
	}
}
