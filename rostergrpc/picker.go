package rostergrpc

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rosterkit/roster/discovery"
)

// picker is roster's picker behind one balancer.
type picker interface {
	pick(ctx context.Context) (discovery.Picked, error)
	// observe records a successful call's latency, for P2C.
	observe(p discovery.Picked, d time.Duration)
}

func newPicker(cfg *lbConfig, src discovery.Source, tel *telemetry) (picker, error) {
	opts := cfg.pickerOptions(tel)
	switch cfg.kind {
	case WeightedName:
		w, err := discovery.NewWeighted(src, opts...)
		return weightedPicker{w}, err
	case P2CName:
		p, err := discovery.NewP2C(src, opts...)
		return p2cPicker{p}, err
	default:
		h, err := discovery.NewConsistentHash(src, opts...)
		if err != nil {
			return nil, err
		}
		r, err := discovery.NewRandom(src, cfg.pickerOptions(tel)...)
		return hashPicker{h: h, r: r, header: cfg.header}, err
	}
}

type weightedPicker struct{ w *discovery.Weighted }

func (p weightedPicker) pick(context.Context) (discovery.Picked, error) { return p.w.Pick() }
func (weightedPicker) observe(discovery.Picked, time.Duration)          {}

type p2cPicker struct{ p *discovery.P2C }

func (p p2cPicker) pick(context.Context) (discovery.Picked, error) { return p.p.Pick() }

func (p p2cPicker) observe(pk discovery.Picked, d time.Duration) { p.p.Observe(pk, d) }

// hashPicker routes a call by its key: WithHashKey's, else the configured
// header's first value. A call without a key goes to a random instance.
type hashPicker struct {
	h      *discovery.ConsistentHash
	r      *discovery.Random
	header string
}

func (p hashPicker) pick(ctx context.Context) (discovery.Picked, error) {
	if k, ok := ctx.Value(hashKey{}).(string); ok {
		return p.h.Pick(k)
	}
	if p.header != "" {
		if vs := metadata.ValueFromOutgoingContext(ctx, p.header); len(vs) > 0 {
			return p.h.Pick(vs[0])
		}
	}
	return p.r.Pick()
}

func (hashPicker) observe(discovery.Picked, time.Duration) {}

type hashKey struct{}

// WithHashKey returns a context whose calls roster_hash routes by key: calls
// with the same key go to the same instance while it is there. It takes
// precedence over the header named in the balancer's config.
func WithHashKey(ctx context.Context, key string) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, hashKey{}, key)
}

// grpcPicker is one balancer's picker for one set of ready endpoints.
type grpcPicker struct {
	pick     picker
	children map[string]balancer.Picker // pick_first's, by instance ID; nil while connecting
	cfg      *lbConfig
	calls    *sync.Pool
}

// Pick asks roster's picker, then the chosen endpoint's pick_first child
// for its connection. It allocates nothing: the call's state comes from a
// pool and goes back in Done.
func (p *grpcPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	pk, err := p.pick.pick(info.Ctx)
	if err != nil {
		// Only possible while a newer picker is being installed.
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	child := p.children[pk.Instance.ID]
	if child == nil {
		// roster_hash's instance is connecting for the first time, or
		// roster's picker is on a newer set of endpoints than this
		// picker: gRPC waits for the next picker.
		pk.Done(nil)
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	res, err := child.Pick(info)
	if err != nil {
		pk.Done(nil)
		return res, err
	}
	c := p.calls.Get().(*call)
	c.pk, c.picker, c.cfg, c.start, c.next = pk, p.pick, p.cfg, monotonic(), res.Done
	res.Done = c.done
	return res, nil
}

// call is one pick's state until its Done.
type call struct {
	pool   *sync.Pool
	done   func(balancer.DoneInfo) // c.finish, made once per call value
	pk     discovery.Picked
	picker picker
	cfg    *lbConfig
	start  time.Duration // monotonic()
	next   func(balancer.DoneInfo)
}

// epoch makes monotonic a reading of the monotonic clock alone, cheaper
// than time.Now's wall and monotonic pair.
var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// finish reports the call's outcome to roster's picker: a failure, by the
// config's failOn codes, counts towards ejection; a success's latency
// feeds P2C.
func (c *call) finish(di balancer.DoneInfo) {
	if c.picker == nil {
		return // gRPC calls Done once; this is not a call of ours
	}
	var err error
	if di.Err != nil && c.cfg.fails(status.Code(di.Err)) {
		err = di.Err
	}
	if err == nil && di.BytesReceived {
		c.picker.observe(c.pk, monotonic()-c.start)
	}
	c.pk.Done(err)
	next := c.next
	c.pk, c.picker, c.cfg, c.next = discovery.Picked{}, nil, nil, nil
	c.pool.Put(c)
	if next != nil {
		next(di)
	}
}
