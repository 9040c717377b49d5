// Package console is a customer display on a text terminal: a readable
// bilingual layout written to an io.Writer, with QR codes drawn in Unicode
// half blocks (two module rows per text line) so a phone can scan the
// terminal. It is the display for headless boxes, serial consoles and hwsim.
package console

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/makiuchi-d/gozxing"

	"campuspay/terminal/device"
	"campuspay/terminal/device/display"
)

// Options configure a console display.
type Options struct {
	// DarkBlocks draws dark modules as blocks, for terminals with dark text
	// on a light background. By default blocks are the light modules, for
	// the usual light-on-dark terminal (as qrencode -t UTF8 does).
	DarkBlocks bool
	// Clear starts each screen with ANSI home + clear, for a dedicated
	// terminal. Without it screens are appended, for logs and tests.
	Clear bool
	// Width is the rule width in columns; default 40.
	Width int
}

// Console is a text customer display. It implements device.Display.
type Console struct {
	opts Options

	mu     sync.Mutex
	w      io.Writer
	halted bool
}

var _ device.Display = (*Console)(nil)

// New returns a console display writing to w.
func New(w io.Writer, opts Options) *Console {
	if opts.Width <= 0 {
		opts.Width = 40
	}
	return &Console{w: w, opts: opts}
}

// Show draws s. After Halt it draws nothing and returns device.ErrHalted.
func (c *Console) Show(s device.Screen) error {
	text, err := Render(s, c.opts)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted {
		return fmt.Errorf("console: show: %w", device.ErrHalted)
	}
	if _, werr := io.WriteString(c.w, text); werr != nil {
		return fmt.Errorf("console: write: %w", werr)
	}
	return err // a QR that could not be encoded; the rest was drawn
}

// Halt blanks the screen and refuses later Shows. It is idempotent.
func (c *Console) Halt() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted {
		return nil
	}
	c.halted = true
	if c.opts.Clear {
		if _, err := io.WriteString(c.w, clear); err != nil {
			return fmt.Errorf("console: halt: %w", err)
		}
	}
	return nil
}

const clear = "\x1b[H\x1b[2J"

// Render lays s out as text. If the QR cannot be encoded the text says so
// and the error is returned with the rest of the screen.
func Render(s device.Screen, opts Options) (string, error) {
	if opts.Width <= 0 {
		opts.Width = 40
	}
	var b strings.Builder
	if opts.Clear {
		b.WriteString(clear)
	}
	if s.Kind == device.ScreenBlank {
		return b.String(), nil
	}
	rule := strings.Repeat("─", opts.Width)
	b.WriteString(rule + "\n")
	if s.Online {
		b.WriteString("● 在线 Online\n")
	} else {
		b.WriteString("○ 离线 Offline\n")
	}
	line := func(zh, en string) {
		if zh != "" {
			b.WriteString(zh + "\n")
		}
		if en != "" {
			b.WriteString(en + "\n")
		}
	}
	line(s.Title, s.TitleEN)
	if s.Kind == device.ScreenResult {
		if s.OK {
			b.WriteString("✔ 成功 Success\n")
		} else {
			b.WriteString("✘ 失败 Failed\n")
		}
	}
	if s.Amount != 0 || s.Kind == device.ScreenAmount {
		label := "金额 Amount"
		if s.Kind == device.ScreenShower {
			label = "费用 Cost"
		}
		fmt.Fprintf(&b, "%s: %s\n", label, display.Yuan(s.Amount))
	}
	if s.Kind == device.ScreenShower {
		fmt.Fprintf(&b, "用水 Water: %s L\n", strconv.FormatFloat(s.Litres, 'f', 1, 64))
		fmt.Fprintf(&b, "预授权 Hold: %s\n", display.Yuan(s.Hold))
	}
	if s.Kind == device.ScreenInput {
		fmt.Fprintf(&b, "输入 Input: %s_\n", s.Input)
	}
	line(s.Message, s.MessageEN)
	for _, l := range s.Lines {
		b.WriteString("· " + l + "\n")
	}
	var err error
	if s.QR != "" {
		var m *gozxing.BitMatrix
		if m, err = display.QR(s.QR); err != nil {
			b.WriteString("[二维码无法生成 QR unavailable]\n")
			err = fmt.Errorf("console: %w", err)
		} else {
			b.WriteString(HalfBlocks(m, opts.DarkBlocks))
		}
	}
	b.WriteString(rule + "\n")
	return b.String(), err
}

// HalfBlocks draws m (true = dark, quiet zone included) with two module
// rows per line: the upper row is the top half of each character cell.
// Blocks are light modules unless darkBlocks. An odd last row is paired
// with a light row, which only widens the quiet zone.
func HalfBlocks(m *gozxing.BitMatrix, darkBlocks bool) string {
	w, h := m.GetWidth(), m.GetHeight()
	ink := func(x, y int) bool { // true: draw a block here
		dark := y < h && m.Get(x, y)
		return dark == darkBlocks
	}
	var b strings.Builder
	for y := 0; y < h; y += 2 {
		for x := range w {
			switch top, bottom := ink(x, y), ink(x, y+1); {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
