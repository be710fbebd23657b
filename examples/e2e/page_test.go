package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/lock"
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

// screenshotDir is where the page test saves its screenshots:
// $ROSTER_SCREENSHOTS if set (the README shows the ones in
// examples/docs, taken with ROSTER_SCREENSHOTS=../docs), else a temporary
// directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("ROSTER_SCREENSHOTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

// page drives one headless browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) has(sel string) string { return "document.querySelector(`" + sel + "`) !== null" }

// until waits until the JavaScript expression holds, without reloading.
func (p *page) until(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
	require.NoError(p.t, err, "the page: %s (%s)", what, expr)
}

func (p *page) eval(expr string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
	require.NoError(p.t, err)
	return v
}

func (p *page) screenshot(dir, name string, width, height int64) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.EmulateViewport(width, height))
	require.NoError(p.t, err)
	time.Sleep(300 * time.Millisecond) // let the layout settle for the picture; not a synchronization
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err)
	path := filepath.Join(dir, name)
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	p.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// Acceptance 2 of the demo: every section of the status page (the charts,
// the leaders with tenure and token, the locks with holder and waiters,
// the timeline) appears, and updates without a reload as a worker joins,
// drains, leaves and the leader changes. It saves the screenshots the
// README shows, at 1400 px and at phone width.
func TestStatusPageLive(t *testing.T) {
	path := browser(t)
	d := newWorkersDemo(t, 2)
	l := startLoad(d.base() + "/svc/worker/hello")
	defer l.finish(t, "status page run")

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	bctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	defer cancelT()
	p := &page{t: t, ctx: bctx}

	_, err := chromedp.Run(bctx, chromedp.EmulateViewport(1400, 1000))
	require.NoError(t, err)
	_, err = chromedp.Run(bctx, chromedp.Navigate(d.base()+"/_roster/"))
	require.NoError(t, err)
	p.until("connects to the live stream", `document.getElementById("conn").textContent === "live"`)
	// A mark that a reload would wipe out: every check below is on the
	// same document.
	_, err = chromedp.Run(bctx, chromedp.Evaluate[Void]("window.__sameDocument = true"))
	require.NoError(t, err)

	// Each section, with what it is made of.
	p.until("the service and its two instances", p.has(`[data-service="worker"] tr[data-instance="worker-1"]`)+" && "+p.has(`tr[data-instance="worker-2"]`))
	p.until("request-rate charts with points", `[...document.querySelectorAll('tr[data-instance] svg[data-series="rate"]')].some(s => +s.dataset.points > 1 && s.querySelector("path"))`)
	p.until("latency charts", p.has(`tr[data-instance] svg[data-series="latency"] path`))
	p.until("error charts", p.has(`[data-service="worker"] svg[data-series="errors"]`))
	leader := d.status().leader("worker")
	p.until("the leader with its token", p.has(`[data-election="worker"] [data-leader="`+leader+`"]`)+" && "+p.has(`[data-election="worker"] [data-token]`))
	p.until("the leader's tenure ticking", `+document.querySelector('[data-election="worker"] [data-tenure]').dataset.tenure >= 2`)
	p.until("the timeline", p.has(`#event-list li[data-kind="joined"]`)+" && "+p.has(`#event-list li[data-kind="leader"]`))

	// A worker joins.
	d.startWorker("page-worker")
	p.until("the new worker's row", p.has(`tr[data-instance="page-worker"][data-status="serving"]`))
	p.until("its join on the timeline", p.has(`#event-list li[data-kind="joined"][data-instance="page-worker"]`))

	// An operator drains it.
	d.roster("drain", "--reason", "disk replacement", "worker", "page-worker")
	p.until("it shows draining, with the reason", p.has(`tr[data-instance="page-worker"][data-status="draining"]`)+
		` && document.querySelector('tr[data-instance="page-worker"]').textContent.includes("disk replacement")`)
	p.until("the drain on the timeline", p.has(`#event-list li[data-kind="drain"][data-instance="page-worker"]`))

	if os.Getenv("ROSTER_SCREENSHOTS") != "" {
		// For the README's pictures, let the charts fill a minute first.
		d.waitStatus(90*time.Second, "a minute of charts", func(st gatewayStatus) bool {
			return st.Gateway.UptimeS > 70
		})
	}

	// A lock held from outside (as etcdctl lock does) with the workers'
	// critical sections waiting in line behind it.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.etcdAddr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	mu, err := lock.NewMutex(cli, "worker", lock.WithTTL(workerTTL))
	require.NoError(t, err)
	defer mu.Close()
	h, err := mu.Lock(bctx)
	require.NoError(t, err)
	var posts sync.WaitGroup
	for range 4 {
		posts.Go(func() {
			resp, err := http.Post(d.base()+"/svc/worker/critical", "", nil)
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	p.until("the lock's holder", p.has(`[data-lock="worker"] [data-holder]`))
	p.until("the workers waiting for it", p.has(`[data-lock="worker"] [data-waiter^="worker-"]`))

	dir := screenshotDir(t)
	p.screenshot(dir, "status-page.png", 1400, 1000)
	p.screenshot(dir, "status-page-phone.png", 390, 844)
	_, err = chromedp.Run(bctx, chromedp.EmulateViewport(1400, 1000))
	require.NoError(t, err)

	require.NoError(t, h.Release(bctx))
	posts.Wait()
	p.until("the queue drained", `!(`+p.has(`[data-lock="worker"] [data-waiter]`)+`)`)

	// The leader is killed: a new one shows.
	st := d.status()
	require.NoError(t, syscall.Kill(st.pidOf("worker", leader), syscall.SIGKILL))
	p.until("a new leader", `(() => { const e = document.querySelector('[data-election="worker"] [data-leader]'); return e && e.dataset.leader !== "`+leader+`"; })()`)
	p.until("the killed leader's departure on the timeline", p.has(`#event-list li[data-kind="lost"][data-instance="`+leader+`"]`))

	// The drained worker leaves.
	require.Zero(t, d.workers["page-worker"].stop(15*time.Second))
	p.until("its row gone", `!(`+p.has(`tr[data-instance="page-worker"]`)+`)`)
	p.until("its leaving on the timeline", p.has(`#event-list li[data-kind="left"][data-instance="page-worker"]`))

	require.True(t, p.eval("window.__sameDocument === true"), "the page was never reloaded")
}

// Void is chromedp's result type of actions that return nothing.
type Void = chromedp.Void
