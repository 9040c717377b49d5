package valvetwin

import (
	"testing"

	"campuspay/terminal/device/valve/modbus"
)

// FuzzExecute runs arbitrary bytes through the request parser and the
// register map: the twin must never panic, and every request gets a
// well-formed response.
func FuzzExecute(f *testing.F) {
	f.Add(modbus.ReadRequest(1, modbus.FuncReadCoils, 0, 1).Bytes())
	f.Add(modbus.WriteSingleCoilRequest(1, 0, true).Bytes())
	f.Add(modbus.ReadRequest(1, modbus.FuncReadInputRegisters, 0, 2).Bytes())
	f.Add(modbus.ReadRequest(1, modbus.FuncReadHoldingRegisters, 1, 0xFFFF).Bytes())
	f.Add(modbus.Frame{Slave: 1, Function: modbus.FuncWriteMultipleCoils, Data: []byte{0, 0, 0, 1, 1, 1}}.Bytes())
	f.Add([]byte{0x01, 0x2B, 0x99})
	f.Fuzz(func(t *testing.T, b []byte) {
		tw := &Twin{opts: Options{Slave: 1, PulsesPerLitre: 450}}
		p := modbus.NewParser(modbus.Requests)
		for _, c := range b {
			req, ok, err := p.Feed(c)
			if err != nil || !ok {
				continue
			}
			resp := tw.execute(req)
			if resp.Slave != req.Slave || resp.Function&0x7F != req.Function {
				t.Fatalf("request %v answered with %v", req, resp)
			}
			if ok, err := parses(resp.Bytes()); err != nil || !ok {
				t.Fatalf("response %v does not parse: %v", resp, err)
			}
		}
	})
}

// parses reports whether b is exactly one response frame.
func parses(b []byte) (bool, error) {
	p := modbus.NewParser(modbus.Responses)
	for i, c := range b {
		_, ok, err := p.Feed(c)
		if err != nil {
			return false, err
		}
		if ok {
			return i == len(b)-1, nil
		}
	}
	return false, nil
}
