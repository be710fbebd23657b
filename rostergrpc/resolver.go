package rostergrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/obs"
)

// Scheme is the target scheme of the resolver: "roster:///<service>".
const Scheme = "roster"

// ResolverBuilder resolves gRPC targets "roster:///<service>" through a
// Discoverer, so that a grpc.ClientConn follows the service's serving
// instances. Query parameters filter by metadata: "roster:///users?zone=eu-1"
// keeps the instances whose metadata has zone=eu-1.
//
// Each endpoint carries its roster.Instance (InstanceFromAttributes) and
// its weight for gRPC's weight-aware policies (weight.FromEndpoint, read
// by ring_hash). Draining instances are left out, always, as discovery's
// pickers leave them out: gRPC sends them no new calls, and calls in flight
// finish on their connections.
//
// The resolver pushes the cache's view on every change, from the watch;
// it does not poll. The cache re-lists on its own when its watch breaks.
// ResolveNow, which gRPC calls when a connection fails, checks the view at
// most once per WithResolveInterval: it reports the cache's error (a stale
// view, etcd unreachable) to the connection, sends the view again if an
// error was reported before, and follows the service again if the view
// had ended (its Discoverer or etcd client closed).
type ResolverBuilder struct {
	d   *discovery.Discoverer
	cfg config
	log *slog.Logger
	tel *telemetry
}

var _ resolver.Builder = (*ResolverBuilder)(nil)

// NewResolverBuilder returns a resolver builder over d, for
// grpc.WithResolvers: nothing is registered globally. Close the gRPC
// connections before d. A nil d is an error wrapping roster.ErrInvalidOption.
func NewResolverBuilder(d *discovery.Discoverer, opts ...Option) (*ResolverBuilder, error) {
	if d == nil {
		return nil, fmt.Errorf("rostergrpc: NewResolverBuilder: %w: nil Discoverer", roster.ErrInvalidOption)
	}
	cfg, err := newConfig("NewResolverBuilder", opts)
	if err != nil {
		return nil, err
	}
	return &ResolverBuilder{
		d:   d,
		cfg: cfg,
		log: obs.Logger(cfg.logger),
		tel: &telemetry{logger: cfg.logger, mp: cfg.meterProvider},
	}, nil
}

// Scheme returns "roster".
func (b *ResolverBuilder) Scheme() string { return Scheme }

// Build starts resolving target for cc. gRPC calls it.
func (b *ResolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	if b == nil || b.d == nil {
		return nil, fmt.Errorf("rostergrpc: %w: ResolverBuilder not made by NewResolverBuilder", roster.ErrInvalidOption)
	}
	service := target.Endpoint()
	cache, err := b.d.Watch(service)
	if err != nil {
		return nil, fmt.Errorf("rostergrpc: resolve %q: %w", target.String(), err)
	}
	want := make(map[string]string)
	for k, vs := range target.URL.Query() {
		if len(vs) > 0 {
			want[k] = vs[len(vs)-1]
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rosterResolver{
		b:       b,
		service: service,
		cc:      cc,
		filter:  discovery.MatchMetadata(want),
		cancel:  cancel,
		now:     make(chan struct{}, 1),
	}
	r.wg.Go(func() { r.run(ctx, cache) })
	return r, nil
}

// rosterResolver pushes a cache's view to one gRPC ClientConn.
type rosterResolver struct {
	b       *ResolverBuilder
	service string
	cc      resolver.ClientConn
	filter  discovery.Filter
	cancel  context.CancelFunc
	now     chan struct{} // ResolveNow's requests, coalesced
	wg      sync.WaitGroup
	once    sync.Once

	// Owned by run.
	pushed   *discovery.Snapshot // the last view sent
	reported error               // the last error reported, nil after a push
	last     time.Time           // the last check ResolveNow asked for
}

func (r *rosterResolver) run(ctx context.Context, cache *discovery.Cache) {
	for {
		r.follow(ctx, cache)
		cache.Close()
		if ctx.Err() != nil {
			return
		}
		// The view ended under us: its Discoverer or etcd client was
		// closed. Say so rather than go quiet, then try again when gRPC
		// asks (it does, with backoff, after an error).
		cause := cache.Err()
		if cause == nil || !errors.Is(cause, discovery.ErrClosed) {
			cause = discovery.ErrClosed
		}
		r.report(fmt.Errorf("rostergrpc: view of %q ended: %w", r.service, cause))
		r.b.log.Warn("rostergrpc: resolver's view ended", obs.KeyService, r.service, obs.KeyErr, cause)
		for cache = nil; cache == nil; {
			if !r.wait(ctx) {
				return
			}
			c, err := r.b.d.Watch(r.service)
			if err != nil {
				r.report(fmt.Errorf("rostergrpc: resolve %q: %w", r.service, err))
				continue
			}
			cache = c
			r.b.log.Info("rostergrpc: resolver follows its service again", obs.KeyService, r.service)
		}
	}
}

// follow pushes the cache's changes until its Changes channel closes,
// and answers ResolveNow meanwhile.
func (r *rosterResolver) follow(ctx context.Context, cache *discovery.Cache) {
	changes := cache.Changes(ctx)
	var timer *time.Timer
	var due <-chan time.Time // a ResolveNow waiting out the interval
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case c, ok := <-changes:
			if !ok {
				return
			}
			r.push(c.Snapshot)
		case <-r.now:
			if due != nil {
				continue // already waiting
			}
			if wait := r.b.cfg.resolveInterval - time.Since(r.last); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				due = timer.C
				continue
			}
			r.check(cache)
		case <-due:
			due = nil
			r.check(cache)
		}
	}
}

// wait waits for a ResolveNow, at most one per interval, or for ctx's end.
func (r *rosterResolver) wait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-r.now:
	}
	if wait := r.b.cfg.resolveInterval - time.Since(r.last); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	r.last = time.Now()
	return true
}

// check is what ResolveNow does on a live view: report why the view may be
// out of date, or send it again once it is current after an error.
func (r *rosterResolver) check(cache *discovery.Cache) {
	r.last = time.Now()
	if err := cache.Err(); err != nil {
		r.report(fmt.Errorf("rostergrpc: view of %q: %w", r.service, err))
		return
	}
	if s := cache.Snapshot(); s.Synced() && (r.reported != nil || s != r.pushed) {
		r.push(s)
	}
}

func (r *rosterResolver) report(err error) {
	r.reported = err
	r.cc.ReportError(err)
}

// push sends a snapshot: one endpoint per serving instance that passes the
// filter. An empty list is sent as it is, so that gRPC stops using
// instances that are all gone.
func (r *rosterResolver) push(s *discovery.Snapshot) {
	var st resolver.State
	for in := range s.All() {
		if !in.Serving() || !r.filter(&in) {
			continue
		}
		ep := resolver.Endpoint{
			Addresses:  []resolver.Address{{Addr: in.Addr}},
			Attributes: attributes.New(instanceKey{}, instanceAttr{in}),
		}
		st.Endpoints = append(st.Endpoints, weight.Set(ep, weight.EndpointInfo{Weight: uint32(in.EffectiveWeight())}))
	}
	st.Attributes = attributes.New(telemetryKey{}, r.b.tel)
	r.pushed, r.reported = s, nil
	// An error asks for re-resolution; the watch sends the next view
	// anyway, and ResolveNow checks it.
	_ = r.cc.UpdateState(st)
}

// ResolveNow asks for a check of the view; see ResolverBuilder.
func (r *rosterResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

// Close stops the resolver and releases its cache handle.
func (r *rosterResolver) Close() {
	r.once.Do(func() {
		r.cancel()
		r.wg.Wait()
	})
}
