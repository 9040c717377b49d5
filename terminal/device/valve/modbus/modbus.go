// Package modbus speaks Modbus RTU (the serial, binary framing used on
// RS-485 buses) as a master over go.bug.st/serial, plus the frame types and
// a resumable parser that a slave (the hwsim twin) reuses.
//
// Only what the shower box needs is implemented on the master side: Read
// Coils (0x01), Write Single Coil (0x05), Read Holding Registers (0x03) and
// Read Input Registers (0x04). The parser also knows the lengths of 0x02,
// 0x06, 0x0F and 0x10 frames so a slave can answer them with an exception
// instead of losing framing.
//
// An RTU frame (ADU) is: slave address, function code, data, CRC-16/MODBUS
// (polynomial 0xA001 reflected, initial 0xFFFF, low byte first on the
// wire). Frames are delimited on a real line by 3.5 character times of
// silence; a pseudo-terminal does not simulate the baud rate, so the
// parser derives each frame's length from its function code and byte count
// instead of relying on gaps, and the master additionally keeps the silence
// before each request so real slaves see clean frame boundaries.
package modbus

import (
	"errors"
	"fmt"
)

// Function codes.
const (
	FuncReadCoils              byte = 0x01
	FuncReadDiscreteInputs     byte = 0x02
	FuncReadHoldingRegisters   byte = 0x03
	FuncReadInputRegisters     byte = 0x04
	FuncWriteSingleCoil        byte = 0x05
	FuncWriteSingleRegister    byte = 0x06
	FuncWriteMultipleCoils     byte = 0x0F
	FuncWriteMultipleRegisters byte = 0x10

	// exceptionBit is set in the function code of an exception response.
	exceptionBit byte = 0x80
)

// Coil values on the wire for Write Single Coil.
const (
	CoilOn  uint16 = 0xFF00
	CoilOff uint16 = 0x0000
)

// Protocol limits (Modbus Application Protocol v1.1b3).
const (
	MaxADU          = 256  // slave address + PDU (≤253) + CRC
	MaxReadCoils    = 2000 // quantity limit for 0x01/0x02
	MaxReadRegister = 125  // quantity limit for 0x03/0x04
)

// Errors of the transport. Exceptions reported by a slave are Exception values.
var (
	ErrCRC        = errors.New("modbus: CRC mismatch")
	ErrFrame      = errors.New("modbus: malformed frame")
	ErrTimeout    = errors.New("modbus: response timeout")
	ErrUnexpected = errors.New("modbus: unexpected response")
	ErrClosed     = errors.New("modbus: client closed")
)

// Exception is a Modbus exception code returned by a slave. It is an error.
type Exception byte

// Exception codes.
const (
	ExceptionIllegalFunction     Exception = 0x01
	ExceptionIllegalDataAddress  Exception = 0x02
	ExceptionIllegalDataValue    Exception = 0x03
	ExceptionServerDeviceFailure Exception = 0x04
	ExceptionAcknowledge         Exception = 0x05
	ExceptionServerDeviceBusy    Exception = 0x06
	ExceptionGatewayPath         Exception = 0x0A
	ExceptionGatewayTarget       Exception = 0x0B
)

func (e Exception) Error() string {
	var s string
	switch e {
	case ExceptionIllegalFunction:
		s = "illegal function"
	case ExceptionIllegalDataAddress:
		s = "illegal data address"
	case ExceptionIllegalDataValue:
		s = "illegal data value"
	case ExceptionServerDeviceFailure:
		s = "server device failure"
	case ExceptionAcknowledge:
		s = "acknowledge"
	case ExceptionServerDeviceBusy:
		s = "server device busy"
	case ExceptionGatewayPath:
		s = "gateway path unavailable"
	case ExceptionGatewayTarget:
		s = "gateway target device failed to respond"
	default:
		s = "unknown"
	}
	return fmt.Sprintf("modbus: exception 0x%02X (%s)", byte(e), s)
}
