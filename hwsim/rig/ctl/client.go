package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"campuspay/hwsim/netcut"
	"campuspay/hwsim/rig"
)

// Client calls a control server.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:7070
	HTTP    *http.Client // default http.DefaultClient
}

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/")}
}

// Error is a failure the control server reported. errors.Is matches it
// against ErrUnknownTerminal and rig.ErrNoDevice by its code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// Is maps the wire codes back to the sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnknownTerminal:
		return e.Code == CodeUnknownTerminal
	case rig.ErrNoDevice:
		return e.Code == CodeNoDevice
	}
	return false
}

func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return fmt.Errorf("ctl: %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ctl: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("ctl: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var ae apiError
		if json.Unmarshal(b, &ae) != nil || ae.Code == "" {
			return &Error{Status: resp.StatusCode, Code: "HTTP", Message: strings.TrimSpace(string(b))}
		}
		return &Error{Status: resp.StatusCode, Code: ae.Code, Message: ae.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("ctl: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func (c *Client) post(ctx context.Context, terminal, op string, in any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("ctl: %s: %w", op, err)
	}
	return c.do(ctx, http.MethodPost, termPath(terminal, op), "application/json", bytes.NewReader(b), nil)
}

func termPath(terminal, op string) string {
	p := "/v1/terminals/" + url.PathEscape(terminal)
	if op != "" {
		p += "/" + op
	}
	return p
}

// Tap presents card uid on the terminal's reader.
func (c *Client) Tap(ctx context.Context, terminal, uid string) error {
	return c.post(ctx, terminal, "tap", TapRequest{UID: uid})
}

// Key types keys on the terminal's keypad ("12.50\n": '\n' is Enter).
func (c *Client) Key(ctx context.Context, terminal, keys string) error {
	return c.post(ctx, terminal, "key", KeyRequest{Keys: keys})
}

// Show shows a code to the terminal's scanner, or its camera if it has no
// scanner.
func (c *Client) Show(ctx context.Context, terminal, text string) error {
	return c.post(ctx, terminal, "show", ShowRequest{Text: text})
}

// ShowVia shows a code on the named device (rig.ViaScanner or rig.ViaCamera).
func (c *Client) ShowVia(ctx context.Context, terminal, via, text string) error {
	return c.post(ctx, terminal, "show", ShowRequest{Text: text, Via: via})
}

// Screenshot holds a phone showing the image (PNG or JPEG bytes) in front of
// the terminal's camera.
func (c *Client) Screenshot(ctx context.Context, terminal string, img []byte) error {
	return c.do(ctx, http.MethodPost, termPath(terminal, "screenshot"), "application/octet-stream", bytes.NewReader(img), nil)
}

// Blank takes the phone out of the camera's view.
func (c *Client) Blank(ctx context.Context, terminal string) error {
	return c.do(ctx, http.MethodPost, termPath(terminal, "blank"), "", nil, nil)
}

// Flow opens the terminal's shower tap to lpm litres per minute (0 closes).
func (c *Client) Flow(ctx context.Context, terminal string, lpm float64) error {
	return c.post(ctx, terminal, "flow", FlowRequest{LPM: lpm})
}

// Valve reads the terminal's valve and flow meter.
func (c *Client) Valve(ctx context.Context, terminal string) (rig.ValveState, error) {
	var v rig.ValveState
	err := c.do(ctx, http.MethodGet, termPath(terminal, "valve"), "", nil, &v)
	return v, err
}

// Cut cuts the terminal's network.
func (c *Client) Cut(ctx context.Context, terminal string, m netcut.Mode) error {
	mode := ModeReset
	if m == netcut.Blackhole {
		mode = ModeBlackhole
	}
	return c.post(ctx, terminal, "net", NetRequest{Action: "cut", Mode: mode})
}

// Restore reconnects the terminal's network.
func (c *Client) Restore(ctx context.Context, terminal string) error {
	return c.post(ctx, terminal, "net", NetRequest{Action: "restore"})
}

// Terminal returns one terminal's status.
func (c *Client) Terminal(ctx context.Context, terminal string) (TerminalStatus, error) {
	var st TerminalStatus
	err := c.do(ctx, http.MethodGet, termPath(terminal, ""), "", nil, &st)
	return st, err
}

// Status lists every registered terminal, sorted by id.
func (c *Client) Status(ctx context.Context) ([]TerminalStatus, error) {
	var out struct {
		Terminals []TerminalStatus `json:"terminals"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/status", "", nil, &out); err != nil {
		return nil, err
	}
	return out.Terminals, nil
}
