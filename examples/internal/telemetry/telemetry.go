// Package telemetry gives the demo's commands one OpenTelemetry
// MeterProvider whose metrics are served in Prometheus text format, together
// with the Go runtime's and the process's own, at /metrics.
package telemetry

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// LatencyBuckets are the histogram bounds, in seconds, of the demo's
// request latencies: 100 µs to 10 s, about three per decade.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics is a MeterProvider and the handler that serves what it records.
type Metrics struct {
	Provider *sdkmetric.MeterProvider
	Handler  http.Handler
}

// New returns a MeterProvider exporting through its own Prometheus registry
// (no global state, so several can live in one process, as tests do), with
// the Go and process collectors added.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	return &Metrics{
		Provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		Handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// Meter returns the meter of one of the demo's commands.
func (m *Metrics) Meter(name string) metric.Meter { return m.Provider.Meter(name) }

// Close stops the provider.
func (m *Metrics) Close() error { return m.Provider.Shutdown(context.Background()) }
