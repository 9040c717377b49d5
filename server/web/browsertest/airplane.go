package browsertest

import (
	"context"
	"fmt"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Incognito opens a tab in a new BrowserContext of b's Chromium — an
// incognito window, with its own cookies, storage, IndexedDB and service
// workers — emulating the same phone screen as b. Several students can so
// each have a wallet of their own in one browser process. Close the tab
// when done; closing b closes it too.
func (b *Browser) Incognito() (*Browser, error) {
	tctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	nb := &Browser{ctx: tctx, cancel: cancel, timeout: b.timeout, opt: b.opt}
	if err := nb.emulatePhone(); err != nil {
		cancel()
		return nil, fmt.Errorf("browsertest: incognito tab: %w", err)
	}
	return nb, nil
}

// Airplane turns the tab's network off (on) or back on, as airplane mode
// does on a phone: every request of the page and of its service worker
// fails as with no network at all, and navigator.onLine is false. The
// service worker's cache and the page's storage stay.
func (b *Browser) Airplane(on bool) error {
	conds := []*network.Conditions{}
	if on {
		conds = append(conds, &network.Conditions{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
	}
	err := b.Do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &on, MatchedNetworkConditions: conds}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: on, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
	if err != nil {
		return fmt.Errorf("browsertest: airplane mode %v: %w", on, err)
	}
	return nil
}

// Reload reloads the page, as pulling down on a phone does, and waits
// until it has started again and drawn its page.
func (b *Browser) Reload() error {
	if _, err := Eval[bool](b, `(window.beforeReload = true)`); err != nil {
		return err
	}
	if err := b.Do(chromedp.Reload()); err != nil {
		return fmt.Errorf("browsertest: reload: %w", err)
	}
	_, err := WaitFor[bool](b, `!window.beforeReload && document.body.dataset.ready === "1" && !!document.body.dataset.rendered`)
	return err
}
