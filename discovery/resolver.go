package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"

	"github.com/rosterkit/roster"
)

// Scheme is the gRPC target scheme of the resolver: "roster:///<service>".
const Scheme = "roster"

// ResolverBuilder resolves gRPC targets "roster:///<service>" through a
// Discoverer, so a grpc.ClientConn follows the service's registered,
// serving instances with no other code. Query parameters filter by
// metadata: "roster:///users?zone=eu-1&version=2" keeps instances whose
// metadata has zone=eu-1 and version=2.
//
// Pass it to grpc.NewClient with grpc.WithResolvers (nothing is registered
// globally) and choose a balancing policy, e.g.
//
//	conn, err := grpc.NewClient("roster:///users",
//		grpc.WithResolvers(discovery.NewResolverBuilder(d)),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
//		grpc.WithTransportCredentials(creds))
//
// Without a service config gRPC uses pick_first, which sends everything to
// one instance.
//
// Each endpoint carries its roster.Instance in its attributes (see
// InstanceFromAttributes), for balancers that want the weight or metadata.
// The resolver follows the service's Cache: when the watch breaks, the
// cache re-lists and retries on its own, and the resolver keeps pushing
// whatever the cache sees; it never stops silently. Draining instances are
// left out, so gRPC stops sending them new calls.
type ResolverBuilder struct {
	d *Discoverer
}

var _ resolver.Builder = (*ResolverBuilder)(nil)

// NewResolverBuilder returns a resolver builder over d. Close the gRPC
// connections before d.
func NewResolverBuilder(d *Discoverer) *ResolverBuilder { return &ResolverBuilder{d: d} }

// Scheme returns "roster".
func (b *ResolverBuilder) Scheme() string { return Scheme }

// Build starts resolving target for cc. It is called by gRPC.
func (b *ResolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := target.Endpoint()
	cache, err := b.d.Watch(service)
	if err != nil {
		return nil, fmt.Errorf("discovery: resolve %q: %w", target.String(), err)
	}
	want := make(map[string]string)
	for k, vs := range target.URL.Query() {
		if len(vs) > 0 {
			want[k] = vs[len(vs)-1]
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &grpcResolver{cache: cache, cc: cc, filter: MatchMetadata(want), cancel: cancel}
	r.wg.Go(func() { r.run(ctx) })
	return r, nil
}

// grpcResolver pushes a cache's view to one gRPC ClientConn.
type grpcResolver struct {
	cache  *Cache
	cc     resolver.ClientConn
	filter Filter
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func (r *grpcResolver) run(ctx context.Context) {
	for ch := range r.cache.Changes(ctx) {
		// Errors from UpdateState ask for re-resolution; a watch-based
		// resolver has nothing better to offer than its next update.
		_ = r.cc.UpdateState(r.state(ch.Snapshot))
	}
	if ctx.Err() == nil {
		// The cache ended under us (the Discoverer or the etcd client was
		// closed): say so rather than go quiet.
		err := r.cache.Err()
		if err == nil || !errors.Is(err, ErrClosed) {
			err = ErrClosed
		}
		r.cc.ReportError(fmt.Errorf("discovery: resolver for %q stopped: %w", r.cache.Service(), err))
	}
}

// state turns a snapshot into resolver state: one endpoint per serving
// instance that passes the filter. An empty list is sent as is, so gRPC
// stops using instances that are all gone.
func (r *grpcResolver) state(s *Snapshot) resolver.State {
	var st resolver.State
	for in := range s.All() {
		if !in.Serving() || !r.filter(&in) {
			continue
		}
		attrs := attributes.New(instanceKey{}, instanceAttr{in})
		st.Endpoints = append(st.Endpoints, resolver.Endpoint{
			Addresses:  []resolver.Address{{Addr: in.Addr}},
			Attributes: attrs,
		})
	}
	return st
}

// ResolveNow does nothing: the view is pushed as soon as etcd changes.
func (r *grpcResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops the resolver and releases its cache handle.
func (r *grpcResolver) Close() {
	r.once.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.cache.Close()
	})
}

// instanceKey is the attributes key of the roster.Instance of an address
// or endpoint.
type instanceKey struct{}

// instanceAttr wraps an Instance so attributes can compare it (maps are
// not comparable with ==).
type instanceAttr struct{ inst roster.Instance }

func (a instanceAttr) Equal(o any) bool {
	b, ok := o.(instanceAttr)
	return ok && equalInstance(&a.inst, &b.inst)
}

// String keeps attribute dumps in gRPC logs readable.
func (a instanceAttr) String() string {
	return fmt.Sprintf("%s/%s weight=%d", a.inst.Service, a.inst.ID, a.inst.EffectiveWeight())
}

// InstanceFromAttributes returns the instance the resolver attached to an
// endpoint's Attributes or an address's BalancerAttributes: a balancer
// reads Weight and Metadata from it. The metadata map is a copy.
func InstanceFromAttributes(a *attributes.Attributes) (roster.Instance, bool) {
	if a == nil {
		return roster.Instance{}, false
	}
	v, ok := a.Value(instanceKey{}).(instanceAttr)
	if !ok {
		return roster.Instance{}, false
	}
	inst := v.inst
	if inst.Metadata != nil {
		inst.Metadata = maps.Clone(inst.Metadata)
	}
	return inst, true
}
