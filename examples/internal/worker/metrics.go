package worker

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/examples/internal/telemetry"
)

// instruments are the worker's own metrics, beside the SDK's.
type instruments struct {
	requests  metric.Int64Counter
	duration  metric.Float64Histogram
	criticals metric.Int64Counter
	reports   metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter("github.com/rosterkit/roster/examples/worker")
	var in instruments
	var err error
	if in.requests, err = m.Int64Counter("worker.requests", metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests served, by route and status code class")); err != nil {
		return nil, err
	}
	if in.duration, err = m.Float64Histogram("worker.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to serve a request, by route"),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets...)); err != nil {
		return nil, err
	}
	if in.criticals, err = m.Int64Counter("worker.critical.sections", metric.WithUnit("{section}"),
		metric.WithDescription("Critical sections entered under the service's lock")); err != nil {
		return nil, err
	}
	if in.reports, err = m.Int64Counter("worker.leader.reports", metric.WithUnit("{report}"),
		metric.WithDescription("Fenced reports written while leading")); err != nil {
		return nil, err
	}
	return &in, nil
}

// measure counts and times the requests of one route, with attribute sets
// made once.
func (in *instruments) measure(route string, h http.Handler) http.Handler {
	byClass := [6]metric.MeasurementOption{}
	for c := range byClass {
		byClass[c] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("route", route), attribute.String("code", string(rune('0'+c))+"xx")))
	}
	routeOnly := metric.WithAttributeSet(attribute.NewSet(attribute.String("route", route)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		c := min(max(rec.code/100, 0), 5)
		in.requests.Add(r.Context(), 1, byClass[c])
		in.duration.Record(r.Context(), time.Since(start).Seconds(), routeOnly)
	})
}

type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
