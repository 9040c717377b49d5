package phone

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// SMS is a text message as the bank simulator's outbox holds it.
type SMS struct {
	Phone string `json:"phone"`
	Text  string `json:"text"`
	Code  string `json:"code"`
}

// LastSMSCode reads the newest one-time code texted to number from the bank
// simulator's outbox (GET /control/sms on bankURL): the simulated student
// reading the SMS on the phone the bank keeps for the card.
func LastSMSCode(ctx context.Context, hc *http.Client, bankURL, number string) (string, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimRight(bankURL, "/") + "/control/sms?phone=" + url.QueryEscape(number)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("phone: read SMS: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("phone: read SMS: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []SMS `json:"messages"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("phone: read SMS: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("phone: read SMS: %w", err)
	}
	if len(out.Messages) == 0 {
		return "", fmt.Errorf("phone: no SMS to %s", number)
	}
	return out.Messages[len(out.Messages)-1].Code, nil
}
