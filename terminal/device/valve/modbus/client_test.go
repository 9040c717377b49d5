package modbus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"

	"testing"
	"time"

	"github.com/creack/pty"
)

// step is one scripted exchange: the exact request the slave expects, and
// the chunks it writes back (none: it stays silent).
type step struct {
	req   string
	reply []string
}

// scripted opens a real pseudo-terminal, runs a slave that follows script
// on the master side, and returns a client on the slave side.
func scripted(t *testing.T, cfg Config, script []step) (*Client, <-chan error) {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(tty.Name(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for _, s := range script {
				want := unhex(t, s.req)
				got := make([]byte, len(want))
				if _, err := io.ReadFull(master, got); err != nil {
					return err
				}
				if !bytes.Equal(got, want) {
					return errors.New("request mismatch: got " + bytesHex(got) + " want " + bytesHex(want))
				}
				for _, r := range s.reply {
					if _, err := master.Write(unhex(t, r)); err != nil {
						return err
					}
				}
			}
			return nil
		}()
	}()
	t.Cleanup(func() {
		c.Close()
		tty.Close()
		master.Close()
	})
	return c, done
}

func bytesHex(b []byte) string { return hex.EncodeToString(b) }

func wait(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scripted slave did not finish")
	}
}

func TestClientReadsAndWrites(t *testing.T) {
	c, done := scripted(t, Config{Baud: 115200}, []step{
		{"01 05 0000 FF00 8C3A", []string{"01 05 0000 FF00 8C3A"}},
		{"01 01 0000 0001 FDCA", []string{"01", "01", "01", "01", "90", "48"}}, // dribbled byte by byte
		{"01 04 0000 0002 71CB", []string{"01 04 04 00", "01 E240 E314"}},
		{"01 03 0000 0002 C40B", []string{"01 03 04 0001 E240 " + crcHex("01 03 04 0001 E240")}},
	})
	if err := c.WriteSingleCoil(1, 0, true); err != nil {
		t.Fatal(err)
	}
	bits, err := c.ReadCoils(1, 0, 1)
	if err != nil || !bits[0] {
		t.Fatalf("ReadCoils = %v, %v", bits, err)
	}
	regs, err := c.ReadInputRegisters(1, 0, 2)
	if err != nil || regs[0] != 1 || regs[1] != 0xE240 {
		t.Fatalf("ReadInputRegisters = %v, %v", regs, err)
	}
	regs, err = c.ReadHoldingRegisters(1, 0, 2)
	if err != nil || regs[0] != 1 || regs[1] != 0xE240 {
		t.Fatalf("ReadHoldingRegisters = %v, %v", regs, err)
	}
	wait(t, done)
	if s := c.Stats(); s.Requests != 4 || s.Retries != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClientErrors(t *testing.T) {
	req := "01 03 0000 0002 C40B"
	good := "01 03 04 0001 E240 " + crcHex("01 03 04 0001 E240")
	cases := []struct {
		name    string
		script  []step
		wantErr error // nil: success
		stats   Stats
	}{
		{"exception is not retried", []step{{req, []string{"01 83 02 C0F1"}}},
			ExceptionIllegalDataAddress, Stats{Requests: 1, Exceptions: 1}},
		{"crc error retried", []step{{req, []string{"01 03 04 0001 E240 0000"}}, {req, []string{good}}},
			nil, Stats{Requests: 2, Retries: 1, CRCErrors: 1}},
		{"garbage retried", []step{{req, []string{"00 FF 55 " + good}}, {req, []string{good}}},
			nil, Stats{Requests: 2, Retries: 1, CRCErrors: 1}},
		{"other slave skipped", []step{{req, []string{"02 03 04 0001 E240 " + crcHex("02 03 04 0001 E240"), good}}},
			nil, Stats{Requests: 1, Unexpected: 1}},
		{"late answer to another request skipped", []step{{req, []string{"01 01 01 00 5188 " + good}}},
			nil, Stats{Requests: 1, Unexpected: 1}},
		{"wrong byte count skipped, then timeout", []step{{req, []string{"01 03 02 0001 " + crcHex("01 03 02 0001")}}, {req, []string{good}}},
			nil, Stats{Requests: 2, Retries: 1, Unexpected: 1, Timeouts: 1}},
		{"timeout retried", []step{{req, nil}, {req, []string{good}}},
			nil, Stats{Requests: 2, Retries: 1, Timeouts: 1}},
		{"timeout gives up", []step{{req, nil}, {req, nil}, {req, nil}},
			ErrTimeout, Stats{Requests: 3, Retries: 2, Timeouts: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, done := scripted(t, Config{Baud: 115200, Timeout: 200 * time.Millisecond}, tc.script)
			regs, err := c.ReadHoldingRegisters(1, 0, 2)
			wait(t, done)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil || regs[1] != 0xE240 {
				t.Fatalf("regs %v err %v", regs, err)
			}
			if s := c.Stats(); s != tc.stats {
				t.Fatalf("stats %+v, want %+v", s, tc.stats)
			}
		})
	}
}

func TestClientClosed(t *testing.T) {
	c, _ := scripted(t, Config{}, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadCoils(1, 0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}
