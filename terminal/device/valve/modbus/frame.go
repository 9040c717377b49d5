package modbus

import (
	"encoding/binary"
	"fmt"
)

// Frame is one RTU frame without its CRC: the slave address, the function
// code and the rest of the PDU.
type Frame struct {
	Slave    byte
	Function byte
	Data     []byte
}

// Append appends the frame's wire bytes (with CRC, low byte first) to dst.
func (f Frame) Append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, f.Slave, f.Function)
	dst = append(dst, f.Data...)
	crc := CRC(dst[start:])
	return append(dst, byte(crc), byte(crc>>8))
}

// Bytes returns the frame's wire bytes.
func (f Frame) Bytes() []byte { return f.Append(make([]byte, 0, len(f.Data)+4)) }

// Exception reports whether f is an exception response, and its code.
func (f Frame) Exception() (Exception, bool) {
	if f.Function&exceptionBit == 0 || len(f.Data) != 1 {
		return 0, false
	}
	return Exception(f.Data[0]), true
}

// Uint16 returns the big-endian word at byte offset off of Data (0 if short).
func (f Frame) Uint16(off int) uint16 {
	if off+2 > len(f.Data) {
		return 0
	}
	return binary.BigEndian.Uint16(f.Data[off:])
}

func (f Frame) String() string {
	return fmt.Sprintf("slave=%d func=0x%02X data=% X", f.Slave, f.Function, f.Data)
}

// ReadRequest is a read request (0x01..0x04) for qty items from addr.
func ReadRequest(slave, function byte, addr, qty uint16) Frame {
	return Frame{Slave: slave, Function: function, Data: be16(addr, qty)}
}

// WriteSingleCoilRequest is a Write Single Coil (0x05) request.
func WriteSingleCoilRequest(slave byte, addr uint16, on bool) Frame {
	v := CoilOff
	if on {
		v = CoilOn
	}
	return Frame{Slave: slave, Function: FuncWriteSingleCoil, Data: be16(addr, v)}
}

// BitsResponse is the response to Read Coils / Read Discrete Inputs:
// a byte count, then the bits packed LSB first.
func BitsResponse(slave, function byte, bits []bool) Frame {
	n := (len(bits) + 7) / 8
	data := make([]byte, 1+n)
	data[0] = byte(n)
	for i, b := range bits {
		if b {
			data[1+i/8] |= 1 << (i % 8)
		}
	}
	return Frame{Slave: slave, Function: function, Data: data}
}

// RegistersResponse is the response to Read Holding / Input Registers:
// a byte count, then the registers big-endian.
func RegistersResponse(slave, function byte, regs []uint16) Frame {
	data := make([]byte, 1, 1+2*len(regs))
	data[0] = byte(2 * len(regs))
	data = append(data, be16(regs...)...)
	return Frame{Slave: slave, Function: function, Data: data}
}

// ExceptionResponse is the exception response to a request with function.
func ExceptionResponse(slave, function byte, e Exception) Frame {
	return Frame{Slave: slave, Function: function | exceptionBit, Data: []byte{byte(e)}}
}

func be16(v ...uint16) []byte {
	b := make([]byte, 0, 2*len(v))
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// Direction says which side of the bus a Parser reads: the lengths of
// requests and responses with the same function code differ.
type Direction int

// Directions.
const (
	Requests  Direction = 1 // a slave parsing what the master sends
	Responses Direction = 2 // a master parsing what slaves send
)

// Parser is a resumable RTU frame parser fed one byte at a time. It knows
// each frame's length from its function code (and byte count, where there is
// one), so it needs no timing. After an error it has already reset; the
// caller should discard input until the line is silent, as a real RTU device
// does, and resynchronise on the next frame.
type Parser struct {
	dir  Direction
	buf  [MaxADU]byte
	n    int
	want int // total length with CRC once known, else 0
}

// NewParser returns a parser for frames travelling in direction dir.
func NewParser(dir Direction) *Parser { return &Parser{dir: dir} }

// Reset drops any partial frame.
func (p *Parser) Reset() { p.n, p.want = 0, 0 }

// Buffered reports how many bytes of a partial frame are held.
func (p *Parser) Buffered() int { return p.n }

// Feed consumes one byte. It returns ok with a complete, CRC-checked frame
// (whose Data the caller owns), or an error (ErrFrame, ErrCRC) when the
// bytes so far cannot be a valid frame.
func (p *Parser) Feed(c byte) (f Frame, ok bool, err error) {
	p.buf[p.n] = c
	p.n++
	if p.want == 0 {
		want, err := p.length()
		if err != nil {
			p.Reset()
			return Frame{}, false, err
		}
		p.want = want
	}
	if p.want == 0 || p.n < p.want {
		return Frame{}, false, nil
	}
	frame := p.buf[:p.n]
	body, tail := frame[:p.n-2], frame[p.n-2:]
	got := uint16(tail[0]) | uint16(tail[1])<<8
	p.Reset()
	if want := CRC(body); got != want {
		return Frame{}, false, fmt.Errorf("%w: got 0x%04X, computed 0x%04X", ErrCRC, got, want)
	}
	data := make([]byte, len(body)-2)
	copy(data, body[2:])
	return Frame{Slave: body[0], Function: body[1], Data: data}, true, nil
}

// length returns the total frame length once the header says it, 0 while
// more header bytes are needed.
func (p *Parser) length() (int, error) {
	if p.n < 2 {
		return 0, nil
	}
	fn := p.buf[1]
	if p.dir == Responses {
		if fn&exceptionBit != 0 {
			if fn&^exceptionBit == 0 {
				return 0, fmt.Errorf("%w: exception for function 0", ErrFrame)
			}
			return 5, nil // slave, function|0x80, code, CRC
		}
		switch fn {
		case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters:
			if p.n < 3 {
				return 0, nil
			}
			bc := int(p.buf[2])
			regs := fn == FuncReadHoldingRegisters || fn == FuncReadInputRegisters
			switch {
			case bc == 0,
				regs && (bc%2 != 0 || bc > 2*MaxReadRegister),
				!regs && bc > (MaxReadCoils+7)/8:
				return 0, fmt.Errorf("%w: function 0x%02X byte count %d", ErrFrame, fn, bc)
			}
			return 3 + bc + 2, nil
		case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
			return 8, nil // slave, function, address, value/quantity, CRC
		}
		return 0, fmt.Errorf("%w: unknown function 0x%02X", ErrFrame, fn)
	}
	switch fn {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters,
		FuncWriteSingleCoil, FuncWriteSingleRegister:
		return 8, nil
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		if p.n < 7 {
			return 0, nil
		}
		bc := int(p.buf[6])
		if bc == 0 || bc > MaxADU-9 {
			return 0, fmt.Errorf("%w: function 0x%02X byte count %d", ErrFrame, fn, bc)
		}
		return 7 + bc + 2, nil
	}
	return 0, fmt.Errorf("%w: unknown function 0x%02X", ErrFrame, fn)
}
