package session

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/internal/obs"
)

// instruments are a session's metrics, created once per Manager (or per
// New without one).
type instruments struct {
	log       *slog.Logger
	roundTrip metric.Float64Histogram
	slack     metric.Float64Histogram
	losses    metric.Int64Counter

	expired, gone metric.MeasurementOption // precomputed cause attributes
}

func newInstruments(o options) *instruments {
	m := obs.Meter(o.meters, "github.com/rosterkit/roster/session")
	in := &instruments{
		log:     obs.Logger(o.logger),
		expired: metric.WithAttributeSet(attribute.NewSet(attribute.String("cause", "expired"))),
		gone:    metric.WithAttributeSet(attribute.NewSet(attribute.String("cause", "lease_gone"))),
	}
	// Errors from the API only say an instrument is unusable; it is then a
	// no-op, which is all a library can do about it.
	in.roundTrip, _ = m.Float64Histogram("roster.session.keepalive.duration", metric.WithUnit("s"),
		metric.WithDescription("Round trip of one lease keep-alive."))
	in.slack, _ = m.Float64Histogram("roster.session.deadline.remaining", metric.WithUnit("s"),
		metric.WithDescription("Time that was left before the local deadline when a keep-alive was acknowledged."))
	in.losses, _ = m.Int64Counter("roster.session.losses", metric.WithUnit("{lease}"),
		metric.WithDescription("Sessions that ended without being closed, by cause."))
	return in
}

func (in *instruments) renewed(rtt, left time.Duration) {
	ctx := context.Background()
	in.roundTrip.Record(ctx, rtt.Seconds())
	in.slack.Record(ctx, left.Seconds())
}

func (in *instruments) lost(expired bool) {
	if expired {
		in.losses.Add(context.Background(), 1, in.expired)
	} else {
		in.losses.Add(context.Background(), 1, in.gone)
	}
}
