package main

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/examples/internal/telemetry"
)

// metrics are the gateway's own OpenTelemetry instruments. Counts are read
// from the statistics the status page keeps (observed at collection, so a
// request costs no more for them); latencies are histograms recorded per
// request with attribute sets made once per service and instance.
type metrics struct {
	requestDur  metric.Float64Histogram // per service: what clients waited
	upstreamDur metric.Float64Histogram // per instance: each answered attempt
	retries     metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider, rt func() *router) (*metrics, error) {
	meter := mp.Meter("github.com/rosterkit/roster/examples/gateway")
	m := &metrics{}
	var err error
	if m.requestDur, err = meter.Float64Histogram("gateway.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a request's arrival to the end of its answer, by service"),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets...)); err != nil {
		return nil, err
	}
	if m.upstreamDur, err = meter.Float64Histogram("gateway.upstream.duration", metric.WithUnit("s"),
		metric.WithDescription("Time an instance took to answer an attempt, by service and instance"),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets...)); err != nil {
		return nil, err
	}
	if m.retries, err = meter.Int64Counter("gateway.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Attempts made again on another instance, by service and reason: not_sent (no byte of the request left, any method) or idempotent")); err != nil {
		return nil, err
	}
	requests, err := meter.Int64ObservableCounter("gateway.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered, by service"))
	if err != nil {
		return nil, err
	}
	failures, err := meter.Int64ObservableCounter("gateway.request.errors", metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered with a 5xx status (the gateway's or an instance's), by service"))
	if err != nil {
		return nil, err
	}
	inflight, err := meter.Int64ObservableUpDownCounter("gateway.requests.inflight", metric.WithUnit("{request}"),
		metric.WithDescription("Requests being served, by service"))
	if err != nil {
		return nil, err
	}
	attempts, err := meter.Int64ObservableCounter("gateway.upstream.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Attempts sent to an instance, by service and instance"))
	if err != nil {
		return nil, err
	}
	attemptErrs, err := meter.Int64ObservableCounter("gateway.upstream.errors", metric.WithUnit("{request}"),
		metric.WithDescription("Attempts that got no answer or a 5xx, by service and instance"))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		r := rt()
		if r == nil {
			return nil
		}
		for _, rte := range r.services() {
			s := rte.stats
			o.ObserveInt64(requests, s.calls.calls.Load(), s.attrs)
			o.ObserveInt64(failures, s.calls.errors.Load(), s.attrs)
			o.ObserveInt64(inflight, s.calls.inflight.Load(), s.attrs)
			s.each(func(is *instanceStats) {
				o.ObserveInt64(attempts, is.calls.calls.Load(), is.attrs)
				o.ObserveInt64(attemptErrs, is.calls.errors.Load(), is.attrs)
			})
		}
		return nil
	}, requests, failures, inflight, attempts, attemptErrs)
	return m, err
}

func (m *metrics) requestDuration(r *route, d time.Duration) {
	m.requestDur.Record(context.Background(), d.Seconds(), r.stats.attrsRecord)
}

func (m *metrics) upstreamDone(r *route, is *instanceStats, d time.Duration, failed bool) {
	m.upstreamDur.Record(context.Background(), d.Seconds(), is.attrsRecord)
}

func (m *metrics) retried(r *route, reason string) {
	opt := r.stats.retryNotSent
	if reason != "not_sent" {
		opt = r.stats.retryIdempotent
	}
	m.retries.Add(context.Background(), 1, opt)
}

// attrSets are the attribute sets of a service's measurements, made once.
func serviceAttrs(s *stats) {
	svc := attribute.String("service", s.service)
	set := attribute.NewSet(svc)
	s.attrs = metric.WithAttributeSet(set)
	s.attrsRecord = metric.WithAttributeSet(set)
	s.retryNotSent = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("reason", "not_sent")))
	s.retryIdempotent = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("reason", "idempotent")))
}

func instanceAttrs(service string, is *instanceStats) {
	set := attribute.NewSet(attribute.String("service", service), attribute.String("instance", is.id))
	is.attrs = metric.WithAttributeSet(set)
	is.attrsRecord = metric.WithAttributeSet(set)
}
