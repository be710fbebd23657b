package lock

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/internal/obs"
)

// instruments are a lock's metrics and logger, with the attribute set
// (kind and name) precomputed.
type instruments struct {
	log     *slog.Logger
	wait    metric.Float64Histogram
	holds   metric.Int64Counter
	losses  metric.Int64Counter
	refused metric.Int64Counter
	attrs   metric.MeasurementOption
}

func newInstruments(c config, kind, name string) *instruments {
	m := obs.Meter(c.meters, "github.com/rosterkit/roster/lock")
	in := &instruments{
		log:   obs.Logger(c.logger).With(slog.String("kind", kind), slog.String(obs.KeyName, name)),
		attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", kind), attribute.String(obs.KeyName, name))),
	}
	// An instrument the API cannot create is a no-op: nothing more a
	// library can do about it.
	in.wait, _ = m.Float64Histogram("roster.lock.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from an acquisition's call to holding, for acquisitions that held."))
	in.holds, _ = m.Int64Counter("roster.lock.holds", metric.WithUnit("{hold}"),
		metric.WithDescription("Acquisitions that held the lock."))
	in.losses, _ = m.Int64Counter("roster.lock.losses", metric.WithUnit("{hold}"),
		metric.WithDescription("Holds that ended without Release or Close: session lost or key deleted."))
	in.refused, _ = m.Int64Counter("roster.lock.fenced.refused", metric.WithUnit("{write}"),
		metric.WithDescription("Fenced writes refused because the hold had ended."))
	return in
}

func (in *instruments) held(waited time.Duration) {
	ctx := context.Background()
	in.holds.Add(ctx, 1, in.attrs)
	in.wait.Record(ctx, waited.Seconds(), in.attrs)
}

func (in *instruments) lost(key string, err error) {
	in.losses.Add(context.Background(), 1, in.attrs)
	in.log.Warn("lock: hold lost", slog.String("key", key), slog.Any(obs.KeyErr, err))
}
