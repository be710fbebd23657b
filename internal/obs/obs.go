// Package obs holds what every package's logs and metrics share: the
// defaults for a nil logger or meter provider, and the attribute keys, so
// that a service or an instance carries the same name in every log record
// and every metric.
package obs

import (
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Attribute keys of log records and metrics, the same in every package.
const (
	KeyService  = "service"
	KeyID       = "id"
	KeyLease    = "lease"
	KeyName     = "name"
	KeyRevision = "revision"
	KeyStatus   = "status"
	KeyErr      = "err"
)

// Logger returns l, or a logger that discards everything when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Meter returns the meter for package pkg (its import path) from mp, or from
// OpenTelemetry's global provider when mp is nil: a no-op until the
// application installs one.
func Meter(mp metric.MeterProvider, pkg string) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(pkg)
}
