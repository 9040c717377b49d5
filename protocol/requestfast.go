package protocol

import "math"

// decodeRequestFast decodes b into m when b is in the narrow form every
// encoder here writes (protocol.Encode, i.e. encoding/json): one object,
// no white space, each known member at most once, strings of printable
// ASCII without escapes, integers without sign trouble, fraction or
// exponent, "cred" an object of its own two members. It reports false,
// leaving m as it was, for anything else, and Decode then takes the
// strict path (encoding/json and CheckJSONNames). Whatever it accepts the
// strict path accepts with the same result (FuzzDecodeRequestFast): it
// exists because the authorizer decodes a request for every payment, and
// encoding/json's two reflective passes and the name check were about 4 %
// of its CPU.
func decodeRequestFast(b []byte, m *Request) bool {
	r := *m
	var cred Credential
	if m.Cred != nil {
		cred = *m.Cred
	}
	p := fastParser{b: b}
	var seen uint16
	ok := p.object(func(name []byte) bool {
		var bit uint16
		var ok bool
		var s string
		var n int64
		switch string(name) {
		case "v":
			bit = 1 << 0
			n, ok = p.int(math.MinInt, math.MaxInt)
			r.V = int(n)
		case "op":
			bit = 1 << 1
			s, ok = p.str()
			r.Op = Op(s)
		case "tx":
			bit = 1 << 2
			s, ok = p.str()
			r.Tx = TxID(s)
		case "terminal":
			bit = 1 << 3
			r.Terminal, ok = p.str()
		case "at":
			bit = 1 << 4
			start := p.i
			if _, ok = p.str(); ok { // as encoding/json: the type's own UnmarshalJSON
				ok = r.At.UnmarshalJSON(b[start:p.i]) == nil
			}
		case "amount":
			bit = 1 << 5
			r.Amount, ok = p.int(math.MinInt64, math.MaxInt64)
		case "cred":
			bit = 1 << 6
			var cseen uint8
			ok = p.object(func(name []byte) bool {
				var cbit uint8
				var s string
				var ok bool
				switch string(name) {
				case "kind":
					cbit = 1
					s, ok = p.str()
					cred.Kind = CredKind(s)
				case "text":
					cbit = 2
					cred.Text, ok = p.str()
				}
				if !ok || cseen&cbit != 0 {
					return false
				}
				cseen |= cbit
				return true
			})
			r.Cred = &cred
		case "secret":
			bit = 1 << 7
			r.Secret, ok = p.str()
		case "ml":
			bit = 1 << 8
			r.ML, ok = p.int(math.MinInt64, math.MaxInt64)
		case "cursor":
			bit = 1 << 9
			r.Cursor, ok = p.uint()
		}
		// An unknown name leaves ok false; r is only a copy until the end.
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if !ok || p.i != len(b) {
		return false
	}
	*m = r
	return true
}

// fastParser reads decodeRequestFast's form; every method reports false
// at the first byte outside it.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) next(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads {"name":value,...}, at least one member, calling member
// with each name to read its value.
func (p *fastParser) object(member func(name []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	for {
		name, ok := p.raw()
		if !ok || !p.next(':') || !member(name) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// raw reads a string of printable ASCII other than a quote or a backslash, which
// JSON and Go read alike, and returns its bytes between the quotes.
func (p *fastParser) raw() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// str is raw as a string.
func (p *fastParser) str() (string, bool) {
	b, ok := p.raw()
	return string(b), ok
}

// digits reads 0 or [1-9][0-9]* into a uint64, refusing overflow.
func (p *fastParser) digits() (uint64, bool) {
	start := p.i
	var n uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
		p.i++
	}
	switch {
	case p.i == start, p.b[start] == '0' && p.i-start > 1:
		return 0, false
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return 0, false // a fraction or exponent: encoding/json refuses it for an integer
	}
	return n, true
}

func (p *fastParser) uint() (uint64, bool) {
	return p.digits()
}

// int reads an integer within [lo, hi]; "-0" is left to the strict path.
func (p *fastParser) int(lo, hi int64) (int64, bool) {
	neg := p.next('-')
	n, ok := p.digits()
	switch {
	case !ok:
		return 0, false
	case neg && n == 0:
		return 0, false
	case neg && n-1 <= uint64(-(lo+1)):
		return -int64(n-1) - 1, true
	case !neg && n <= uint64(hi):
		return int64(n), true
	}
	return 0, false
}
