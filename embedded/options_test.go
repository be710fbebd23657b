package embedded_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
)

// TestOptionRanges holds the zero rule: negative or out-of-range values are
// refused before anything starts, naming the option; zero values are the
// defaults.
func TestOptionRanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, opt := range map[string]embedded.Option{
		"quota":              embedded.WithQuotaBackendBytes(-1),
		"revision retention": embedded.WithRevisionCompaction(-1),
		"heartbeat":          embedded.WithTimings(-time.Millisecond, 0),
		"election":           embedded.WithTimings(0, -time.Millisecond),
		"five heartbeats":    embedded.WithTimings(300*time.Millisecond, time.Second),
		"check interval":     embedded.WithDefragPolicy(embedded.DefragPolicy{CheckInterval: -1}),
		"min free":           embedded.WithDefragPolicy(embedded.DefragPolicy{MinFreeBytes: -1}),
		"in-use ratio":       embedded.WithDefragPolicy(embedded.DefragPolicy{MaxInUseRatio: -0.5}),
		"in-use ratio above": embedded.WithDefragPolicy(embedded.DefragPolicy{MaxInUseRatio: 1.5}),
		"quota ratio":        embedded.WithDefragPolicy(embedded.DefragPolicy{QuotaRatio: 2}),
		"snapshot dir":       embedded.WithSnapshots(embedded.SnapshotSchedule{}),
		"snapshot interval":  embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: dir, Interval: -time.Second}),
		"snapshot keep":      embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: dir, Keep: -1}),
	} {
		_, err := embedded.Start(context.Background(), opt)
		require.ErrorIs(t, err, embedded.ErrInvalidConfig, name)
		require.ErrorIs(t, err, roster.ErrInvalidOption, name)
		t.Logf("%s: %v", name, err)
	}
	_, err := embedded.Start(context.Background(), embedded.WithMetricsAddr("0.0.0.0:0"))
	require.ErrorIs(t, err, embedded.ErrInsecureListen, "the metrics listener keeps to loopback too")

	_, err = embedded.Join(context.Background(), nil)
	require.ErrorIs(t, err, roster.ErrNilClient)

	m := embeddedtest.Start(t,
		embedded.WithQuotaBackendBytes(0), embedded.WithTimings(0, 0),
		embedded.WithDefragPolicy(embedded.DefragPolicy{}), embedded.WithNoSpaceRecovery(embedded.NoSpaceRecovery{}),
		embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: dir}),
		embedded.WithLogger(nil), embedded.WithZapLogger(nil), embedded.WithMeterProvider(nil),
		embedded.WithMetricsAddr(""))
	st := m.Server().Status()
	require.EqualValues(t, 2<<30, st.Quota, "etcd's default quota")
	require.Contains(t, m.Server().MetricsURL(), "http://127.0.0.1:")
}

// TestMetrics reads this package's metrics through an OpenTelemetry reader
// after a defragmentation and a snapshot, and etcd's own from the metrics
// listener.
func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	m := embeddedtest.Start(t, embedded.WithMeterProvider(mp), embedded.WithMetricsAddr("127.0.0.1:0"),
		embedded.WithDefragPolicy(testPolicy),
		embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: t.TempDir(), Interval: 100 * time.Millisecond}))
	fragment(t, ctx, m.Client(), 8<<20, m)
	require.Eventually(t, func() bool {
		st := m.Server().Status()
		return st.Defrag.Count == 1 && st.Snapshots.Count >= 1
	}, 30*time.Second, 10*time.Millisecond)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if r, _ := p.Attributes.Value("result"); r.AsString() == "ok" {
						got[mt.Name] += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					got[mt.Name] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[mt.Name] += int64(p.Count)
				}
			}
		}
	}
	require.EqualValues(t, 1, got[embedded.MetricDefrags])
	require.EqualValues(t, 1, got[embedded.MetricDefragDuration])
	require.GreaterOrEqual(t, got[embedded.MetricSnapshots], int64(1))
	require.Positive(t, got[embedded.MetricDBSize])
	require.Positive(t, got[embedded.MetricDBSizeInUse])

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for path, want := range map[string]string{"/metrics": "etcd_server_has_leader 1", "/health": `"health":"true"`} {
		resp, err := hc.Get(m.Server().MetricsURL() + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.True(t, strings.Contains(string(body), want), "%s: %.300s", path, body)
	}
}
