package registry

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/session"
)

// instruments are a registrar's metrics. Attribute sets are made once:
// per scope here, per service in forService.
type instruments struct {
	instances metric.Int64UpDownCounter
	renewals  metric.Int64Counter
	losses    metric.Int64Counter
	restores  metric.Int64Counter
	heal      metric.Float64Histogram
	conflicts metric.Int64Counter

	lease, key         []metric.AddOption    // scope attribute
	leaseHeal, keyHeal []metric.RecordOption // the same, for the histogram
	services           map[string][]metric.AddOption
	bg                 context.Context
}

// scope says whether a loss or restore is of the whole lease or of one
// instance's key.
const keyScope = "scope"

// healBuckets are the heal time histogram's bounds, in seconds: from a
// key written back within milliseconds to a lease restored after a long
// outage.
var healBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func newInstruments(mp metric.MeterProvider) *instruments {
	m := obs.Meter(mp, "github.com/rosterkit/roster/registry")
	lease := attribute.NewSet(attribute.String(keyScope, "lease"))
	key := attribute.NewSet(attribute.String(keyScope, "instance"))
	in := &instruments{
		lease:     []metric.AddOption{metric.WithAttributeSet(lease)},
		key:       []metric.AddOption{metric.WithAttributeSet(key)},
		leaseHeal: []metric.RecordOption{metric.WithAttributeSet(lease)},
		keyHeal:   []metric.RecordOption{metric.WithAttributeSet(key)},
		services:  make(map[string][]metric.AddOption),
		bg:        context.Background(),
	}
	// An error only says an instrument is unusable; it is then a no-op,
	// which is all a library can do about it.
	in.instances, _ = m.Int64UpDownCounter("roster.registry.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances the registrar keeps registered, by service."))
	in.renewals, _ = m.Int64Counter("roster.registry.renewals", metric.WithUnit("{renewal}"),
		metric.WithDescription("Acknowledged renewals of the registrar's lease."))
	in.losses, _ = m.Int64Counter("roster.registry.losses", metric.WithUnit("{loss}"),
		metric.WithDescription("Leases presumed lost and instance keys deleted by someone else, by scope."))
	in.restores, _ = m.Int64Counter("roster.registry.restores", metric.WithUnit("{restore}"),
		metric.WithDescription("Losses repaired: everything back under a new lease, or a deleted key written back, by scope."))
	in.heal, _ = m.Float64Histogram("roster.registry.heal.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a loss to its repair, by scope."),
		metric.WithExplicitBucketBoundaries(healBuckets...))
	in.conflicts, _ = m.Int64Counter("roster.registry.conflicts", metric.WithUnit("{conflict}"),
		metric.WithDescription("Instance keys found held by another owner, by service."))
	return in
}

// forService returns the attribute option of service; r.mu must be held.
func (in *instruments) forService(service string) []metric.AddOption {
	opts, ok := in.services[service]
	if !ok {
		opts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(obs.KeyService, service)))}
		in.services[service] = opts
	}
	return opts
}

// The registrar's state changes, each logged once and counted. Called with
// r.mu held where noted.

// registeredLocked counts an instance registered (+1) or dropped (-1).
func (r *Registrar) registeredLocked(service string, n int64) {
	r.in.instances.Add(r.in.bg, n, r.in.forService(service)...)
}

func (r *Registrar) leaseLost(lease int64, err error) {
	r.in.losses.Add(r.in.bg, 1, r.in.lease...)
	r.log.Warn("registry: lease lost", slog.String(obs.KeyLease, hex(lease)), slog.Any(obs.KeyErr, err))
}

func (r *Registrar) leaseRestored(old, lease int64, instances int, took time.Duration) {
	r.in.restores.Add(r.in.bg, 1, r.in.lease...)
	r.in.heal.Record(r.in.bg, took.Seconds(), r.in.leaseHeal...)
	r.log.Info("registry: lease restored", slog.String(obs.KeyLease, hex(lease)), slog.String("lost", hex(old)),
		slog.Int("instances", instances), slog.Duration("took", took))
}

// keyLostLocked reports e's key deleted by someone else.
func (r *Registrar) keyLostLocked(e *entry, err error) {
	r.in.losses.Add(r.in.bg, 1, r.in.key...)
	r.log.Warn("registry: instance key deleted by someone else", slog.String(obs.KeyService, e.service),
		slog.String(obs.KeyID, e.id), slog.Any(obs.KeyErr, err))
}

// keyRestoredLocked reports e's deleted key written back.
func (r *Registrar) keyRestoredLocked(e *entry, took time.Duration) {
	r.in.restores.Add(r.in.bg, 1, r.in.key...)
	r.in.heal.Record(r.in.bg, took.Seconds(), r.in.keyHeal...)
	r.log.Info("registry: instance key restored", slog.String(obs.KeyService, e.service),
		slog.String(obs.KeyID, e.id), slog.Duration("took", took))
}

// conflictLoggedLocked reports another owner on e's key.
func (r *Registrar) conflictLoggedLocked(e *entry, err error) {
	r.in.conflicts.Add(r.in.bg, 1, r.in.forService(e.service)...)
	r.log.Warn("registry: instance key held by another owner", slog.String(obs.KeyService, e.service),
		slog.String(obs.KeyID, e.id), slog.Any(obs.KeyErr, err))
}

// unreachable reports the first failed attempt after a success; later
// ones, while etcd stays unreachable, are not logged.
func (r *Registrar) unreachable(err error) {
	r.log.Warn("registry: etcd cannot be written; retrying", slog.Any(obs.KeyErr, err))
}

// countRenewals counts the renewals of s seen since the last call, from its
// deadline: it moves forward only when a renewal is acknowledged. The run
// loop calls it more often than a session renews. A new session starts the
// count over without counting its grant.
func (r *Registrar) countRenewals(s *session.Session) {
	d := s.Deadline()
	if r.renewing == s && d.After(r.renewed) {
		r.in.renewals.Add(r.in.bg, 1)
	}
	r.renewing, r.renewed = s, d
}

// renewCheck is how often the run loop looks for renewals: ten times per
// TTL, three times per renewal of a session's default interval.
func renewCheck(ttl time.Duration) time.Duration { return max(ttl/10, 100*time.Millisecond) }

func hex(l int64) string { return strconv.FormatInt(l, 16) }
