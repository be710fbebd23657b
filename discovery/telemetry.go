package discovery

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/internal/obs"
)

// Metrics are observed when they are collected, from counters the caches
// and pickers keep anyway: a pick only increments its entry's pick count,
// with or without a meter provider.

const meterName = "github.com/rosterkit/roster/discovery"

// telemetry is a Discoverer's metrics.
type telemetry struct {
	reg metric.Registration
}

func newTelemetry(d *Discoverer, mp metric.MeterProvider) (*telemetry, error) {
	m := obs.Meter(mp, meterName)
	instances, err1 := m.Int64ObservableGauge("roster.discovery.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances in a cache's view, by status."))
	age, err2 := m.Float64ObservableGauge("roster.discovery.cache.age", metric.WithUnit("s"),
		metric.WithDescription("Time since a cache's view was last confirmed against etcd."))
	stale, err3 := m.Int64ObservableGauge("roster.discovery.cache.stale", metric.WithUnit("1"),
		metric.WithDescription("1 while a cache reports its view stale (ErrStale), else 0."))
	lists, err4 := m.Int64ObservableCounter("roster.discovery.cache.lists", metric.WithUnit("{list}"),
		metric.WithDescription("Complete reads of a service: the first sync and every re-list."))
	restarts, err5 := m.Int64ObservableCounter("roster.discovery.cache.restarts", metric.WithUnit("{restart}"),
		metric.WithDescription("Failed attempts of a cache to list or watch, each followed by a new list."))
	skipped, err6 := m.Int64ObservableGauge("roster.discovery.cache.skipped", metric.WithUnit("{key}"),
		metric.WithDescription("Keys under a service that are not valid instances."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		d.mu.Lock()
		ws := make([]*watcher, 0, len(d.watchers))
		for _, w := range d.watchers {
			ws = append(ws, w)
		}
		d.mu.Unlock()
		for _, w := range ws {
			a := &w.attrs
			o.ObserveInt64(instances, w.serving.Load(), a.serving)
			o.ObserveInt64(instances, w.other.Load(), a.draining)
			s := w.snap.Load()
			if s.Synced() {
				o.ObserveFloat64(age, s.Age().Seconds(), a.service)
			}
			isStale := int64(0)
			if errors.Is(w.f.Err(), ErrStale) {
				isStale = 1
			}
			o.ObserveInt64(stale, isStale, a.service)
			o.ObserveInt64(lists, int64(w.f.Lists()), a.service)
			o.ObserveInt64(restarts, int64(w.f.Restarts()), a.service)
			o.ObserveInt64(skipped, int64(s.Skipped()), a.service)
		}
		return nil
	}, instances, age, stale, lists, restarts, skipped)
	if err != nil {
		return nil, err
	}
	return &telemetry{reg: reg}, nil
}

func (t *telemetry) close() {
	if t != nil && t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// watcherAttrs are a cache's precomputed attribute sets.
type watcherAttrs struct {
	service, serving, draining metric.ObserveOption
}

func newWatcherAttrs(service string) watcherAttrs {
	svc := attribute.String(obs.KeyService, service)
	return watcherAttrs{
		service:  metric.WithAttributeSet(attribute.NewSet(svc)),
		serving:  metric.WithAttributeSet(attribute.NewSet(svc, attribute.String(obs.KeyStatus, "serving"))),
		draining: metric.WithAttributeSet(attribute.NewSet(svc, attribute.String(obs.KeyStatus, "draining"))),
	}
}

// pickerTelemetry is a picker's logs and metrics. Its metric callback
// holds the picker weakly and is unregistered once the picker is garbage,
// so pickers need no Close.
type pickerTelemetry struct {
	log       *slog.Logger
	kind      string
	service   atomic.Pointer[string]
	ejections metric.Int64Counter
}

const keyPicker = "picker"

func newPickerTelemetry(b *base, cfg pickerConfig) *pickerTelemetry {
	logger, mp := cfg.logger, cfg.meterProvider
	if c, ok := b.src.(*Cache); ok && c != nil {
		if !cfg.loggerSet {
			logger = c.d.log
		}
		if !cfg.meterSet {
			mp = c.d.cfg.meterProvider
		}
	}
	t := &pickerTelemetry{log: obs.Logger(logger), kind: b.kind}
	svc := ""
	t.service.Store(&svc)
	m := obs.Meter(mp, meterName)
	// Instrument errors leave the metric out; picking goes on.
	t.ejections, _ = m.Int64Counter("roster.discovery.ejections", metric.WithUnit("{ejection}"),
		metric.WithDescription("Instances a picker ejected after consecutive failed calls."))
	picks, err1 := m.Int64ObservableCounter("roster.discovery.picks", metric.WithUnit("{pick}"),
		metric.WithDescription("Instances a picker chose, per instance."))
	failures, err2 := m.Int64ObservableCounter("roster.discovery.pick.failures", metric.WithUnit("{call}"),
		metric.WithDescription("Calls reported failed through Picked.Done, per instance."))
	pickable, err3 := m.Int64ObservableGauge("roster.discovery.picker.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances a picker may choose from, by status: pickable or ejected."))
	if errors.Join(err1, err2, err3) != nil {
		return t
	}
	wb := weak.Make(b)
	var sets struct {
		svc               string
		pickable, ejected metric.ObserveOption
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		b := wb.Value()
		if b == nil {
			return nil
		}
		svc := *b.tel.service.Load()
		b.mu.Lock()
		defer b.mu.Unlock()
		if sets.pickable == nil || sets.svc != svc {
			sets.svc = svc
			sets.pickable = metric.WithAttributeSet(attribute.NewSet(attribute.String(obs.KeyService, svc),
				attribute.String(keyPicker, b.kind), attribute.String(obs.KeyStatus, "pickable")))
			sets.ejected = metric.WithAttributeSet(attribute.NewSet(attribute.String(obs.KeyService, svc),
				attribute.String(keyPicker, b.kind), attribute.String(obs.KeyStatus, "ejected")))
		}
		ejected := 0
		now := b.nowNano()
		for _, e := range b.byID {
			if e.attrs == nil {
				e.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String(obs.KeyService, svc),
					attribute.String(obs.KeyID, e.id), attribute.String(keyPicker, b.kind)))
			}
			o.ObserveInt64(picks, e.picks.Load(), e.attrs)
			o.ObserveInt64(failures, e.failures.Load(), e.attrs)
			if u := e.until.Load(); u != 0 && now < u {
				ejected++
			}
		}
		o.ObserveInt64(pickable, int64(len(b.byID)-ejected), sets.pickable)
		o.ObserveInt64(pickable, int64(ejected), sets.ejected)
		return nil
	}, picks, failures, pickable)
	if err == nil {
		runtime.AddCleanup(b, func(r metric.Registration) { _ = r.Unregister() }, reg)
	}
	return t
}

// setService records the service of the picker's snapshots.
func (t *pickerTelemetry) setService(s string) {
	if *t.service.Load() != s {
		t.service.Store(&s)
	}
}

func (t *pickerTelemetry) ejected(e *entry, failures int, d time.Duration) {
	svc := *t.service.Load()
	t.ejections.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String(obs.KeyService, svc), attribute.String(obs.KeyID, e.id), attribute.String(keyPicker, t.kind)))
	t.log.Warn("discovery: instance ejected", obs.KeyService, svc, obs.KeyID, e.id, keyPicker, t.kind,
		"failures", failures, "for", d)
}

func (t *pickerTelemetry) restored(e *entry) {
	t.log.Info("discovery: instance back from ejection", obs.KeyService, *t.service.Load(), obs.KeyID, e.id, keyPicker, t.kind)
}
