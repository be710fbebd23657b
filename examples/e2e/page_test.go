package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browser finds a Chromium-family browser, or skips: .ci/run installs
// Debian's chromium, so CI always has one.
func browser(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium-family browser installed (apt-get install chromium); skipping the status page test")
	return ""
}

// A person watching the status page sees a worker appear when it registers
// and disappear when it stops, without reloading.
func TestStatusPageShowsInstancesLive(t *testing.T) {
	path := browser(t)
	d := newDemo(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	has := func(sel string) string { return "document.querySelector('" + sel + "') !== null" }
	row := `tr[data-instance="page-worker"]`
	_, err := chromedp.Run(ctx, chromedp.Navigate(d.base()+"/_roster/"))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("conn").textContent === "live"`))
	require.NoError(t, err, "the page connected to the live event stream")
	present, err := chromedp.Run(ctx, chromedp.Evaluate[bool](has(row)))
	require.NoError(t, err)
	require.False(t, present, "the worker is not on the page before it starts")

	d.startWorker("page-worker")
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](has(row)))
	require.NoError(t, err, "the worker appeared on the page without a reload")
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](has(`[data-leader="page-worker"]`)))
	require.NoError(t, err, "the page shows the worker leading")

	require.Zero(t, d.workers["page-worker"].stop(15*time.Second))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool]("!("+has(row)+")"))
	require.NoError(t, err, "the worker disappeared from the page without a reload")
}
