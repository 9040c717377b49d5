package scenario

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png" // the display serves its QR as PNG
	"net/http"
	"strings"
	"sync"

	"campuspay/protocol"
	"campuspay/server/web/qrscan"
	"campuspay/terminal/device"
)

// Screen is what a terminal's customer display shows, as its web page
// receives it over server-sent events.
type Screen struct {
	Seq       int64             `json:"seq"`
	Kind      device.ScreenKind `json:"kind"`
	Title     string            `json:"title"`
	TitleEN   string            `json:"titleEN"`
	Message   string            `json:"message"`
	MessageEN string            `json:"messageEN"`
	Amount    string            `json:"amount"`
	Result    string            `json:"result"`
	QR        string            `json:"qr"`
	Input     string            `json:"input"`
	Litres    string            `json:"litres"`
	Hold      string            `json:"hold"`
	Lines     []string          `json:"lines"`
	Online    bool              `json:"online"`
}

// Reason maps the display's message back to the reason code it shows
// as-is ("" when the message is not a known reason).
func (s Screen) Reason() string {
	for _, r := range protocol.Reasons() {
		if s.Message == r.ZH || s.MessageEN == r.EN {
			return r.Code
		}
	}
	return ""
}

// Display watches one terminal's customer display the way the kiosk page
// does: it subscribes to /events and keeps every screen it sees.
type Display struct {
	base string

	mu      sync.Mutex
	screens []Screen
	changed chan struct{}
	err     error
	cancel  context.CancelFunc
	done    chan struct{}
}

// WatchDisplay connects to the display at base ("http://127.0.0.1:PORT").
func WatchDisplay(ctx context.Context, base string) *Display {
	ctx, cancel := context.WithCancel(ctx)
	d := &Display{base: base, changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go d.run(ctx)
	return d
}

func (d *Display) run(ctx context.Context) {
	defer close(d.done)
	for ctx.Err() == nil {
		d.stream(ctx)
		select {
		case <-ctx.Done():
		case <-afterBackoff():
		}
	}
}

func (d *Display) stream(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, "GET", d.base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var s Screen
		if json.Unmarshal([]byte(data), &s) != nil {
			continue
		}
		d.mu.Lock()
		if n := len(d.screens); n == 0 || d.screens[n-1].Seq != s.Seq {
			d.screens = append(d.screens, s)
			close(d.changed)
			d.changed = make(chan struct{})
		}
		d.mu.Unlock()
	}
}

// Close stops watching.
func (d *Display) Close() {
	d.cancel()
	<-d.done
}

// Last returns the newest screen seen.
func (d *Display) Last() (Screen, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.screens) == 0 {
		return Screen{}, false
	}
	return d.screens[len(d.screens)-1], true
}

// Mark returns a position: WaitAfter only considers screens after it.
func (d *Display) Mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.screens)
}

// WaitAfter waits for the first screen after mark for which ok is true.
func (d *Display) WaitAfter(ctx context.Context, mark int, what string, ok func(Screen) bool) (Screen, error) {
	for {
		d.mu.Lock()
		for i := mark; i < len(d.screens); i++ {
			if ok(d.screens[i]) {
				s := d.screens[i]
				d.mu.Unlock()
				return s, nil
			}
		}
		mark = len(d.screens)
		ch := d.changed
		var last Screen
		if len(d.screens) > 0 {
			last = d.screens[len(d.screens)-1]
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return last, fmt.Errorf("display %s: waiting for %s: %w (last screen: kind %d %q %q)", d.base, what, ctx.Err(), last.Kind, last.Title, last.Message)
		}
	}
}

// Result waits for the next result screen after mark.
func (d *Display) Result(ctx context.Context, mark int) (Screen, error) {
	return d.WaitAfter(ctx, mark, "a result", func(s Screen) bool { return s.Kind == device.ScreenResult })
}

// ReadQR fetches the QR image the display shows and decodes it, as a
// student's phone camera would.
func (d *Display) ReadQR(ctx context.Context, s Screen) (string, error) {
	if s.QR == "" {
		return "", fmt.Errorf("display %s: no QR on screen", d.base)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", d.base+s.QR, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("display: QR image: %w", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return "", err
	}
	img, _, err := image.Decode(&buf)
	if err != nil {
		return "", fmt.Errorf("display: QR image: %w", err)
	}
	text, err := qrscan.DecodeImage(img)
	if err != nil {
		return "", fmt.Errorf("display: QR image does not decode: %w", err)
	}
	return text, nil
}
