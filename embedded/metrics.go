package embedded

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Metrics recorded through WithMeterProvider, each with the attribute
// "name" (the member's name); results carry "result" = "ok" or "error"
// ("recovered" or "unrecoverable" for NOSPACE recoveries).
const (
	MetricDefrags          = "roster.embedded.defrags"            // counter, {defragmentation}
	MetricDefragDuration   = "roster.embedded.defrag.duration"    // histogram, s
	MetricSnapshots        = "roster.embedded.snapshots"          // counter, {snapshot}
	MetricNoSpaceRecovered = "roster.embedded.nospace.recoveries" // counter, {recovery}
	MetricDBSize           = "roster.embedded.db.size"            // gauge, By: the database file
	MetricDBSizeInUse      = "roster.embedded.db.size_in_use"     // gauge, By: the part holding data
)

const meterName = "github.com/rosterkit/roster/embedded"

// instruments are a member's metrics, created once at Start.
type instruments struct {
	defrags   metric.Int64Counter
	duration  metric.Float64Histogram
	snapshots metric.Int64Counter
	recovery  metric.Int64Counter
	reg       metric.Registration

	ok, failed, unrecoverable, fine metric.MeasurementOption
}

func newInstruments(mp metric.MeterProvider, s *Server) *instruments {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(meterName)
	name := attribute.String(KeyName, s.cfg.name)
	in := &instruments{
		ok:            metric.WithAttributes(name, attribute.String("result", "ok")),
		failed:        metric.WithAttributes(name, attribute.String("result", "error")),
		fine:          metric.WithAttributes(name, attribute.String("result", "recovered")),
		unrecoverable: metric.WithAttributes(name, attribute.String("result", "unrecoverable")),
	}
	// A provider that refuses an instrument gets a no-op one: metrics never
	// stop a member.
	var err error
	if in.defrags, err = meter.Int64Counter(MetricDefrags, metric.WithUnit("{defragmentation}"),
		metric.WithDescription("Defragmentations of the member's database.")); err != nil || in.defrags == nil {
		in.defrags = noop.Int64Counter{}
	}
	if in.duration, err = meter.Float64Histogram(MetricDefragDuration, metric.WithUnit("s"),
		metric.WithDescription("How long a defragmentation blocked the member.")); err != nil || in.duration == nil {
		in.duration = noop.Float64Histogram{}
	}
	if in.snapshots, err = meter.Int64Counter(MetricSnapshots, metric.WithUnit("{snapshot}"),
		metric.WithDescription("Scheduled snapshots written or failed.")); err != nil || in.snapshots == nil {
		in.snapshots = noop.Int64Counter{}
	}
	if in.recovery, err = meter.Int64Counter(MetricNoSpaceRecovered, metric.WithUnit("{recovery}"),
		metric.WithDescription("NOSPACE alarms recovered, or found unrecoverable.")); err != nil || in.recovery == nil {
		in.recovery = noop.Int64Counter{}
	}
	size, err1 := meter.Int64ObservableGauge(MetricDBSize, metric.WithUnit("By"),
		metric.WithDescription("Size of the member's database file."))
	inUse, err2 := meter.Int64ObservableGauge(MetricDBSizeInUse, metric.WithUnit("By"),
		metric.WithDescription("Bytes of the database file holding data."))
	if err1 != nil || err2 != nil || size == nil || inUse == nil {
		return in
	}
	attrs := metric.WithAttributes(name)
	be := s.etcd.Server.Backend
	in.reg, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		b := be()
		o.ObserveInt64(size, b.Size(), attrs)
		o.ObserveInt64(inUse, b.SizeInUse(), attrs)
		return nil
	}, size, inUse)
	return in
}

func (in *instruments) close() {
	if in.reg != nil {
		in.reg.Unregister()
	}
}

func (in *instruments) defragged(ctx context.Context, took time.Duration, err error) {
	res := in.ok
	if err != nil {
		res = in.failed
	}
	ctx = context.WithoutCancel(ctx)
	in.defrags.Add(ctx, 1, res)
	in.duration.Record(ctx, took.Seconds(), res)
}

func (in *instruments) snapshotted(ctx context.Context, err error) {
	res := in.ok
	if err != nil {
		res = in.failed
	}
	in.snapshots.Add(context.WithoutCancel(ctx), 1, res)
}

func (in *instruments) recovered(ctx context.Context, ok bool) {
	res := in.fine
	if !ok {
		res = in.unrecoverable
	}
	in.recovery.Add(context.WithoutCancel(ctx), 1, res)
}
