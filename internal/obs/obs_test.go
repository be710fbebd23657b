package obs_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster/internal/obs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNilLoggerDiscards(t *testing.T) {
	obs.Logger(nil).Info("dropped") // must not panic or print
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	obs.Logger(l).Info("kept")
	require.Contains(t, buf.String(), "kept")
}

func TestMeterFromProviderOrGlobal(t *testing.T) {
	ctx := context.Background()
	given := sdkmetric.NewManualReader()
	c, err := obs.Meter(sdkmetric.NewMeterProvider(sdkmetric.WithReader(given)), "pkg").Int64Counter("given")
	require.NoError(t, err)
	c.Add(ctx, 2)

	global := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(global)))
	defer otel.SetMeterProvider(prev)
	g, err := obs.Meter(nil, "pkg").Int64Counter("global")
	require.NoError(t, err)
	g.Add(ctx, 3)

	for reader, name := range map[*sdkmetric.ManualReader]string{given: "given", global: "global"} {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(ctx, &rm))
		require.Len(t, rm.ScopeMetrics, 1)
		require.Equal(t, "pkg", rm.ScopeMetrics[0].Scope.Name)
		require.Equal(t, name, rm.ScopeMetrics[0].Metrics[0].Name)
	}
}
