package registry_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// records is a slog handler that keeps every record's message and
// attributes.
type records struct {
	mu   sync.Mutex
	msgs []string
	all  []map[string]string
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	h.all = append(h.all, attrs)
	return nil
}

func (h *records) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}

// metricsOf collects reader's metrics by name.
func metricsOf(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/rosterkit/roster/registry" {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sum is the total of a counter's points, optionally those with attribute
// key=value only.
func sum(agg metricdata.Aggregation, kv ...string) int64 {
	s, ok := agg.(metricdata.Sum[int64])
	if !ok {
		return 0
	}
	var n int64
	for _, p := range s.DataPoints {
		if len(kv) == 2 {
			if v, ok := p.Attributes.Value(attribute.Key(kv[0])); !ok || v.AsString() != kv[1] {
				continue
			}
		}
		n += p.Value
	}
	return n
}

// healSamples is how many times the heal histogram recorded, by scope.
func healSamples(agg metricdata.Aggregation, scope string) uint64 {
	h, ok := agg.(metricdata.Histogram[float64])
	if !ok {
		return 0
	}
	var n uint64
	for _, p := range h.DataPoints {
		if v, _ := p.Attributes.Value("scope"); v.AsString() == scope {
			n += p.Count
		}
	}
	return n
}

// Issue 13: metrics through the OpenTelemetry API, read with the SDK's
// manual reader, and logs of state changes only, driven by real events.
func TestMetricsAndLogs(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	logs := &records{}
	r := newRegistrar(t, m.Client(), registry.WithTTL(testTTL), registry.WithMeterProvider(mp), registry.WithLogger(slog.New(logs)))

	registerN(t, r, "users", 3)
	registerN(t, r, "orders", 1)
	got := metricsOf(t, reader)
	assert.Equal(t, int64(3), sum(got["roster.registry.instances"], "service", "users"))
	assert.Equal(t, int64(1), sum(got["roster.registry.instances"], "service", "orders"))
	assert.Empty(t, logs.messages(), "registering is no state change of the registrar")

	// Renewals are counted, and not logged.
	until(t, 3*testTTL, func() bool { return sum(metricsOf(t, reader)["roster.registry.renewals"]) >= 3 }, "three renewals counted")
	assert.Empty(t, logs.messages(), "no record per renewal")

	// A lease revoked from outside: one loss, one restore, one heal sample.
	_, err := plain.Revoke(ctx, r.Status().Lease)
	require.NoError(t, err)
	waitEvent(t, r, registry.EventRestored, 5*time.Second)
	got = metricsOf(t, reader)
	assert.Equal(t, int64(1), sum(got["roster.registry.losses"]))
	assert.Equal(t, int64(1), sum(got["roster.registry.restores"]))
	assert.Equal(t, uint64(1), healSamples(got["roster.registry.heal.duration"], "lease"))
	assert.Equal(t, int64(3), sum(got["roster.registry.instances"], "service", "users"), "the same instances, back")
	assert.Equal(t, []string{"registry: lease lost", "registry: lease restored"}, logs.messages())
	logs.mu.Lock()
	assert.NotEmpty(t, logs.all[0]["lease"])
	assert.NotEmpty(t, logs.all[1]["took"], "how long the heal took")
	assert.Equal(t, "4", logs.all[1]["instances"])
	logs.mu.Unlock()

	// A key deleted from outside.
	_, err = plain.Delete(ctx, key("users", "i001"))
	require.NoError(t, err)
	waitEvent(t, r, registry.EventRestored, 5*time.Second)
	got = metricsOf(t, reader)
	assert.Equal(t, int64(1), sum(got["roster.registry.losses"], "scope", "instance"))
	assert.Equal(t, int64(1), sum(got["roster.registry.restores"], "scope", "instance"))
	assert.Equal(t, uint64(1), healSamples(got["roster.registry.heal.duration"], "instance"))

	// A conflict, and a drain request.
	grant, err := plain.Grant(ctx, 60)
	require.NoError(t, err)
	_, err = plain.Put(ctx, key("users", "i002"), `{"v":1,"addr":"10.6.6.6:1"}`, clientv3.WithLease(grant.ID))
	require.NoError(t, err)
	waitEvent(t, r, registry.EventError, 5*time.Second)
	assert.Equal(t, int64(1), sum(metricsOf(t, reader)["roster.registry.conflicts"], "service", "users"))
	require.NoError(t, registry.RequestDrain(ctx, plain, "users", "i000", "test"))
	waitEvent(t, r, registry.EventDrainRequested, 5*time.Second)

	want := []string{
		"registry: lease lost", "registry: lease restored",
		"registry: instance key deleted by someone else", "registry: instance key restored",
		"registry: instance key held by another owner",
		"registry: drain requested",
	}
	assert.Equal(t, want, logs.messages(), "one record per state change")

	require.NoError(t, r.Deregister(ctx, "orders", "i000"))
	assert.Equal(t, int64(0), sum(metricsOf(t, reader)["roster.registry.instances"], "service", "orders"))
	require.NoError(t, r.Close())
	assert.Equal(t, int64(0), sum(metricsOf(t, reader)["roster.registry.instances"]), "none after Close")
	assert.Equal(t, want, logs.messages(), "closing is no loss")
}
