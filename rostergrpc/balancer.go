package rostergrpc

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/obs"
)

// Names of the balancers, for the service config's loadBalancingConfig.
const (
	// WeightedName is smooth weighted round-robin by instance weight
	// (discovery.Weighted).
	WeightedName = "roster_weighted"
	// P2CName is power of two choices on calls in flight and latency
	// (discovery.P2C).
	P2CName = "roster_p2c"
	// HashName is consistent hashing on a key of the call
	// (discovery.ConsistentHash): see WithHashKey.
	HashName = "roster_hash"
)

func init() {
	for _, name := range []string{WeightedName, P2CName, HashName} {
		balancer.Register(builder{name})
	}
}

type builder struct{ name string }

func (b builder) Name() string { return b.name }

func (b builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return parseConfig(b.name, js)
}

// Build makes one endpointsharding balancer with a pick_first child per
// endpoint, as gRPC's own policies do, and picks among the ready children
// with roster's pickers.
func (b builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	rb := &rosterBalancer{ClientConn: cc, kind: b.name, service: opts.Target.Endpoint(), log: obs.Logger(nil)}
	rb.cfg, _ = parseConfig(b.name, nil)
	rb.calls.New = func() any {
		c := &call{pool: &rb.calls}
		c.done = c.finish
		return c
	}
	rb.child = endpointsharding.NewBalancer(rb, opts, balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return rb
}

// rosterBalancer is one of the balancers on one gRPC connection.
type rosterBalancer struct {
	// The parent connection. UpdateState is intercepted: the children's
	// states come in, roster's picker goes out.
	balancer.ClientConn
	kind, service string
	child         balancer.Balancer
	calls         sync.Pool // of *call

	mu       sync.Mutex // serializes updates
	cfg      *lbConfig
	tel      *telemetry
	log      *slog.Logger
	src      source
	pick     picker // roster's, for cfg
	ready    []roster.Instance
	seen     map[string]bool // instances that have been ready, by ID
	notReady bool            // no ready endpoint since the last update, for logs
	closed   bool
}

// source hands the ready endpoints' instances to roster's pickers.
type source struct {
	snap atomic.Pointer[discovery.Snapshot]
}

func (s *source) Snapshot() *discovery.Snapshot { return s.snap.Load() }

func (b *rosterBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, ok := s.BalancerConfig.(*lbConfig)
	if !ok || cfg == nil {
		cfg, _ = parseConfig(b.kind, nil)
	}
	tel := telemetryFrom(s.ResolverState.Attributes)
	b.mu.Lock()
	if b.pick == nil || !cfg.equal(b.cfg) || tel != b.tel {
		b.cfg, b.tel = cfg, tel
		if tel != nil {
			b.log = obs.Logger(tel.logger)
		}
		// A new config starts new pickers: ejections and counts start
		// over.
		p, err := newPicker(cfg, &b.src, tel)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		b.pick = p
	}
	b.mu.Unlock()
	// The children get no config: pick_first's defaults. The health
	// listener makes gRPC's client-side health checks (healthCheckConfig)
	// take endpoints out of the ready set.
	return b.child.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

// UpdateState receives the children's states from endpointsharding (with
// its lock held: it must not call back into the children).
func (b *rosterBalancer) UpdateState(state balancer.State) {
	var ready, pending []endpointsharding.ChildState
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	seen := make(map[string]bool, len(b.seen))
	for _, c := range endpointsharding.ChildStatesFromPicker(state.Picker) {
		id := b.instance(c.Endpoint).ID
		switch st := c.State.ConnectivityState; {
		case st == connectivity.Ready:
			ready = append(ready, c)
			seen[id] = true
		case b.kind == HashName && !b.seen[id] && (st == connectivity.Connecting || st == connectivity.Idle):
			// Not connected yet, for the first time: its keys wait for it,
			// so that they do not move while the connections come up.
			pending = append(pending, c)
		default:
			seen[id] = b.seen[id]
		}
	}
	b.seen = seen
	if len(ready) == 0 || b.pick == nil {
		// Nothing to pick from: endpointsharding's picker queues the
		// calls or fails them as the children's states say.
		if !b.notReady {
			b.notReady = true
			if len(b.ready) > 0 {
				b.log.Warn("rostergrpc: no ready endpoint", obs.KeyService, b.service, "balancer", b.kind, "state", state.ConnectivityState.String())
			}
		}
		b.ClientConn.UpdateState(state)
		return
	}
	insts := make([]roster.Instance, 0, len(ready)+len(pending))
	children := make(map[string]balancer.Picker, len(ready)+len(pending))
	for i, c := range append(ready, pending...) {
		in := b.instance(c.Endpoint)
		if _, dup := children[in.ID]; dup {
			continue
		}
		children[in.ID] = nil // pending
		if i < len(ready) {
			children[in.ID] = c.State.Picker
		}
		insts = append(insts, in)
	}
	slices.SortFunc(insts, func(x, y roster.Instance) int { return strings.Compare(x.ID, y.ID) })
	if !sameInstances(insts, b.ready) || b.src.Snapshot() == nil {
		b.src.snap.Store(discovery.NewSnapshot(b.service, insts...))
		if b.notReady && len(b.ready) > 0 {
			b.log.Info("rostergrpc: endpoints ready again", obs.KeyService, b.service, "balancer", b.kind, "ready", len(insts))
		}
		b.ready = insts
	}
	b.notReady = false
	b.ClientConn.UpdateState(balancer.State{
		ConnectivityState: connectivity.Ready,
		Picker:            &grpcPicker{pick: b.pick, children: children, cfg: b.cfg, calls: &b.calls},
	})
}

// instance is the roster.Instance of an endpoint: the resolver's, or one
// made up from the address and weight attribute when another resolver
// produced the endpoint.
func (b *rosterBalancer) instance(ep resolver.Endpoint) roster.Instance {
	if v, ok := ep.Attributes.Value(instanceKey{}).(instanceAttr); ok {
		in := v.inst
		in.Status = roster.StatusServing // gRPC says it is ready
		return in
	}
	var addr string
	if len(ep.Addresses) > 0 {
		addr = ep.Addresses[0].Addr
	}
	return roster.Instance{
		Service: b.service,
		ID:      addr,
		Addr:    addr,
		Weight:  int(min(weight.FromEndpoint(ep).Weight, roster.MaxWeight)),
	}
}

func sameInstances(a, b []roster.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y roster.Instance) bool {
		return x.ID == y.ID && x.Addr == y.Addr && x.Weight == y.Weight && x.Service == y.Service
	})
}

func (b *rosterBalancer) ResolverError(err error) { b.child.ResolverError(err) }

func (b *rosterBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *rosterBalancer) ExitIdle() { b.child.ExitIdle() }

func (b *rosterBalancer) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.child.Close()
}
