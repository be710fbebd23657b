package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGatewayOverhead measures requests per second through the gateway
// against the same worker hit directly, in the same run, with a bounded
// loopback load. It takes some seconds of full CPU, so it runs only with
// ROSTER_BENCH=1:
//
//	ROSTER_BENCH=1 go test -run GatewayOverhead -v ./examples/e2e
func TestGatewayOverhead(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") == "" {
		t.Skip("set ROSTER_BENCH=1 to measure the gateway's overhead")
	}
	d := newDemo(t)
	d.startWorker("bench")
	addr := d.workers["bench"].await(`worker \S+ serving at (http://\S+)`, time.Second)[1]
	d.waitStatus(10*time.Second, "worker routable", func(st gatewayStatus) bool { return !without(st, "bench") })

	const (
		clients  = 16
		duration = 3 * time.Second
	)
	// A bare ReverseProxy to the same worker, in this process, tells the
	// cost of any extra hop apart from the gateway's own work.
	target, err := url.Parse(addr)
	require.NoError(t, err)
	rp := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer rp.Close()

	direct := hammer(t, addr+"/x", clients, duration)
	viaGateway := hammer(t, d.base()+"/svc/worker/x", clients, duration)
	viaBare := hammer(t, rp.URL+"/x", clients, duration)
	t.Logf("direct: %.0f req/s; through the gateway: %.0f req/s (%.2f of direct); through a bare ReverseProxy: %.0f req/s (%.2f of direct); gateway/bare = %.2f (%d clients, %v each, loopback, 2 cores shared by all)",
		direct, viaGateway, viaGateway/direct, viaBare, viaBare/direct, viaGateway/viaBare, clients, duration)
}

// hammer sends GETs from n clients for d and returns successful requests
// per second; any failure fails the test.
func hammer(t *testing.T, url string, n int, d time.Duration) float64 {
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var ok, failed atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for time.Now().Before(stop) {
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load(), "failed requests to %s", url)
	return float64(ok.Load()) / time.Since(start).Seconds()
}
