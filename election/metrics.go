package election

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/internal/obs"
)

// instruments are an Election's metrics and logger, with the attribute sets
// precomputed for its name.
type instruments struct {
	log     *slog.Logger
	leader  metric.Int64UpDownCounter
	changes metric.Int64Counter
	tenure  metric.Float64Histogram
	wait    metric.Float64Histogram
	refused metric.Int64Counter

	name                   metric.MeasurementOption
	gained, lost, resigned metric.MeasurementOption
}

func newInstruments(o options, name string) *instruments {
	m := obs.Meter(o.meters, "github.com/rosterkit/roster/election")
	nameAttr := attribute.String(obs.KeyName, name)
	change := func(c string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(nameAttr, attribute.String("change", c)))
	}
	in := &instruments{
		log:      obs.Logger(o.logger).With(slog.String(obs.KeyName, name)),
		name:     metric.WithAttributeSet(attribute.NewSet(nameAttr)),
		gained:   change("gained"),
		lost:     change("lost"),
		resigned: change("resigned"),
	}
	// An instrument the API cannot create is a no-op: nothing more a
	// library can do about it.
	in.leader, _ = m.Int64UpDownCounter("roster.election.leader", metric.WithUnit("{leader}"),
		metric.WithDescription("1 while this process leads the election, 0 otherwise."))
	in.changes, _ = m.Int64Counter("roster.election.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Leaderships this process gained, lost or resigned."))
	in.tenure, _ = m.Float64Histogram("roster.election.tenure", metric.WithUnit("s"),
		metric.WithDescription("How long each leadership of this process lasted."))
	in.wait, _ = m.Float64Histogram("roster.election.campaign.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from Campaign to leading, for campaigns that won."))
	in.refused, _ = m.Int64Counter("roster.election.fenced.refused", metric.WithUnit("{write}"),
		metric.WithDescription("Fenced writes refused because the leadership had ended."))
	in.leader.Add(context.Background(), 0, in.name) // a series from the start: 0, not absent
	return in
}

func (in *instruments) won(l *Leadership, waited time.Duration) {
	ctx := context.Background()
	in.leader.Add(ctx, 1, in.name)
	in.changes.Add(ctx, 1, in.gained)
	in.wait.Record(ctx, waited.Seconds(), in.name)
	in.log.Info("election: leadership gained", slog.String("key", l.key), slog.Int64(obs.KeyRevision, l.token))
}

func (in *instruments) ended(l *Leadership, cause error, voluntary bool) {
	ctx := context.Background()
	in.leader.Add(ctx, -1, in.name)
	in.tenure.Record(ctx, time.Since(l.since).Seconds(), in.name)
	if voluntary {
		in.changes.Add(ctx, 1, in.resigned)
		in.log.Info("election: leadership ended", slog.String("key", l.key), slog.Any(obs.KeyErr, cause))
		return
	}
	in.changes.Add(ctx, 1, in.lost)
	in.log.Warn("election: leadership lost", slog.String("key", l.key), slog.Any(obs.KeyErr, cause))
}
