package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape reads a /metrics page in Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// value sums a metric's samples whose labels include want (a counter's or
// gauge's value, a histogram's count).
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

// curl /metrics on the running demo, after traffic and a worker killed
// under it, shows the gateway's request metrics per service and instance
// and roster's own (discovery's, the embedded member's); a worker's
// /metrics shows its requests and its SDK's (registry, session, election,
// lock).
func TestMetricsAfterTrafficAndAKill(t *testing.T) {
	d := newWorkersDemo(t, 3)
	st := d.status()
	leader := st.leader("worker")
	var victim, survivor string
	var victimPID int
	for _, w := range st.Gateway.Workers {
		if w.ID != leader && victim == "" {
			victim, victimPID = w.ID, w.PID
		} else if w.ID != leader {
			survivor = w.ID
		}
	}
	wAddr := st.addrOf("worker", survivor)
	require.NotEmpty(t, wAddr)
	gets := startLoad(d.base() + "/svc/worker/hello")
	ps := startPosts(d.base() + "/svc/worker/critical")
	d.waitStatus(10*time.Second, "traffic", func(st gatewayStatus) bool { return st.Services[0].Requests > 100 })
	require.NoError(t, syscall.Kill(victimPID, syscall.SIGKILL))
	d.waitStatus(workerTTL+2*time.Second, "the killed worker gone", func(st gatewayStatus) bool { return without(st, victim) })
	gets.finish(t, "metrics run")
	ps.finish(t, "metrics run")

	mfs := scrape(t, d.base()+"/metrics")
	must := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := value(mfs, name, labels)
		require.True(t, ok, "gateway /metrics has %s%v", name, labels)
		return v
	}
	svc := map[string]string{"service": "worker"}
	require.Positive(t, must("gateway_requests_total", svc))
	require.Positive(t, must("gateway_request_duration_seconds", svc), "latency histogram per service")
	for _, id := range []string{leader, victim, survivor} {
		inst := map[string]string{"service": "worker", "instance": id}
		require.Positive(t, must("gateway_upstream_requests_total", inst), "attempts on %s", id)
		require.Positive(t, must("gateway_upstream_duration_seconds", inst), "latency histogram of %s", id)
	}
	killed := must("gateway_upstream_errors_total", map[string]string{"service": "worker", "instance": victim})
	require.Positive(t, killed, "failed attempts on the killed worker")
	retries := must("gateway_retries_total", map[string]string{"service": "worker", "reason": "not_sent"})
	require.Positive(t, retries, "refused attempts retried")
	// A POST in flight on the worker when it died may fail (it cannot be
	// sent twice); the error counter counts exactly what clients saw fail.
	clientFailed := float64(gets.failed.Load() + ps.refused.Load() + ps.other.Load())
	require.Equal(t, clientFailed, must("gateway_request_errors_total", svc), "errors as the clients saw them")
	// roster's own: discovery (caches, pickers) and the embedded member.
	require.Equal(t, 2.0, must("roster_discovery_instances", svc), "instances per service")
	require.Positive(t, must("roster_discovery_picks_total", svc))
	must("roster_discovery_cache_age_seconds", svc)
	must("roster_discovery_cache_lists_total", svc)
	require.Positive(t, must("roster_embedded_db_size_bytes", nil))
	t.Logf("gateway /metrics: %d families; %v failed attempts on the killed worker, %v retried as never sent", len(mfs), killed, retries)

	// A worker's own /metrics: its requests and its SDK's metrics.
	wm := scrape(t, "http://"+wAddr+"/metrics")
	for _, name := range []string{"worker_requests_total", "worker_request_duration_seconds", "roster_registry_instances",
		"roster_registry_renewals_total", "roster_session_keepalive_duration_seconds", "roster_election_leader",
		"roster_lock_holds_total", "roster_lock_wait_duration_seconds"} {
		_, ok := value(wm, name, nil)
		require.True(t, ok, "worker /metrics has %s; it has %v", name, names(wm))
	}
	require.Zero(t, d.gateway.stop(30*time.Second))
}

func names(mfs map[string]*dto.MetricFamily) string {
	var out []string
	for n := range mfs {
		out = append(out, n)
	}
	return strings.Join(out, " ")
}
