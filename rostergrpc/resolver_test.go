package rostergrpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/rostergrpc"
)

// recorder is a balancer for the resolver tests: round_robin, recording
// every resolver state and error it is given.
const recorderName = "rostergrpc_test_recorder"

type recorder struct {
	balancer.Balancer
	cc     balancer.ClientConn
	states chan resolver.State
	errs   chan error
}

var (
	recordersMu sync.Mutex
	recorders   = map[string]*recorder{} // by target
)

type recorderBuilder struct{}

func (recorderBuilder) Name() string { return recorderName }

func (recorderBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	recordersMu.Lock()
	defer recordersMu.Unlock()
	r := recorders[opts.Target.Endpoint()+"?"+opts.Target.URL.RawQuery]
	r.cc = cc
	r.Balancer = balancer.Get(roundrobin.Name).Build(cc, opts)
	return r
}

func (recorderBuilder) ParseConfig(json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return nil, nil
}

func init() { balancer.Register(recorderBuilder{}) }

func (r *recorder) UpdateClientConnState(s balancer.ClientConnState) error {
	select {
	case <-r.states:
	default:
	}
	r.states <- s.ResolverState
	return r.Balancer.UpdateClientConnState(balancer.ClientConnState{ResolverState: s.ResolverState})
}

func (r *recorder) ResolverError(err error) {
	select {
	case r.errs <- err:
	default:
	}
	r.Balancer.ResolverError(err)
}

// record connects to target through rb with a recorder.
func record(t *testing.T, rb *rostergrpc.ResolverBuilder, target string) *recorder {
	t.Helper()
	if !strings.Contains(target, "?") {
		target += "?"
	}
	r := &recorder{states: make(chan resolver.State, 1), errs: make(chan error, 100)}
	recordersMu.Lock()
	recorders[target] = r
	recordersMu.Unlock()
	conn, err := grpc.NewClient("roster:///"+strings.TrimSuffix(target, "?"), grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+recorderName+`":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.Connect()
	return r
}

// next waits for the next resolver state that satisfies ok.
func (r *recorder) next(t *testing.T, ok func(resolver.State) bool) resolver.State {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-r.states:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatal("no such resolver state within 10 s")
		}
	}
}

func endpoints(n int) func(resolver.State) bool {
	return func(s resolver.State) bool { return len(s.Endpoints) == n }
}

// The resolver sends one endpoint per serving instance that passes the
// query's filter, in ID order, with its instance and its weight; draining
// instances are left out, and the deprecated Addresses are not set.
func TestResolverEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, in := range []roster.Instance{
		{Service: "ep", ID: "a", Addr: "127.0.0.1:1001", Weight: 5, Metadata: map[string]string{"zone": "eu"}},
		{Service: "ep", ID: "b", Addr: "127.0.0.1:1002", Metadata: map[string]string{"zone": "us"}},
		{Service: "ep", ID: "c", Addr: "127.0.0.1:1003", Weight: 2, Metadata: map[string]string{"zone": "eu"}},
	} {
		putInstance(t, e, in)
	}
	all := record(t, e.rb, "ep")
	s := all.next(t, endpoints(3))
	assert.Empty(t, s.Addresses, "deprecated Addresses")
	for i, want := range []struct {
		id     string
		weight uint32
	}{{"a", 5}, {"b", 1}, {"c", 2}} {
		ep := s.Endpoints[i]
		in, ok := rostergrpc.InstanceFromAttributes(ep.Attributes)
		require.True(t, ok)
		assert.Equal(t, want.id, in.ID)
		assert.Equal(t, in.Addr, ep.Addresses[0].Addr)
		assert.Equal(t, want.weight, weight.FromEndpoint(ep).Weight, want.id)
	}

	eu := record(t, e.rb, "ep?zone=eu")
	s = eu.next(t, endpoints(2))
	for _, ep := range s.Endpoints {
		in, _ := rostergrpc.InstanceFromAttributes(ep.Attributes)
		assert.Equal(t, "eu", in.Metadata["zone"])
	}

	putInstance(t, e, roster.Instance{Service: "ep", ID: "a", Addr: "127.0.0.1:1001", Status: roster.StatusDraining})
	s = all.next(t, endpoints(2))
	for _, ep := range s.Endpoints {
		in, _ := rostergrpc.InstanceFromAttributes(ep.Attributes)
		assert.NotEqual(t, "a", in.ID, "a draining instance is sent")
	}
	eu.next(t, endpoints(1))
	_, err := e.cli.Delete(ctx, "/roster/services/ep/c")
	require.NoError(t, err)
	eu.next(t, endpoints(0)) // an empty list is sent as it is
}

// putInstance writes an instance as package registry would, without a
// lease: these tests look at the reading side.
func putInstance(t *testing.T, e *env, in roster.Instance) {
	t.Helper()
	v, err := roster.EncodeInstance(in)
	require.NoError(t, err)
	_, err = e.cli.Put(context.Background(), "/roster/services/"+in.Service+"/"+in.ID, string(v))
	require.NoError(t, err)
}

// ResolveNow reports a stale view to the connection, at most once per
// interval however often gRPC asks, and sends the view again once it is
// current; a view that ends (its Discoverer closed) is reported too.
func TestResolverResolveNow(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	d, err := discovery.New(etcdtest.NewClient(t, proxy.Endpoint()), discovery.WithProgressInterval(100*time.Millisecond))
	require.NoError(t, err)
	defer d.Close()
	const interval = 300 * time.Millisecond
	rb, err := rostergrpc.NewResolverBuilder(d, rostergrpc.WithResolveInterval(interval))
	require.NoError(t, err)
	e := &env{m: m, cli: m.Client()}
	putInstance(t, e, roster.Instance{Service: "rn", ID: "a", Addr: "127.0.0.1:1001"})
	r := record(t, rb, "rn")
	r.next(t, endpoints(1))

	proxy.Pause()
	eventually(t, 5*time.Second, func() bool {
		r.cc.ResolveNow(resolver.ResolveNowOptions{})
		return len(r.errs) > 0
	}, "no error reported while etcd is out of reach")
	err = <-r.errs
	t.Logf("reported: %v", err)
	assert.ErrorIs(t, err, discovery.ErrStale)
	assert.ErrorIs(t, err, roster.ErrStale)

	// Asked 100 times in 3 intervals, it checks about 3 times.
	start := time.Now()
	for range 100 {
		r.cc.ResolveNow(resolver.ResolveNowOptions{})
		time.Sleep(3 * interval / 100) // pacing gRPC's asks, not synchronization
	}
	time.Sleep(interval) // let the last check due run
	checks := len(r.errs)
	t.Logf("100 ResolveNow in %v: %d checks (interval %v)", time.Since(start).Round(time.Millisecond), checks, interval)
	assert.LessOrEqual(t, checks, int(time.Since(start)/interval)+1)
	assert.GreaterOrEqual(t, checks, 2)

	proxy.Restore()
	eventually(t, 10*time.Second, func() bool {
		r.cc.ResolveNow(resolver.ResolveNowOptions{})
		select {
		case s := <-r.states:
			return len(s.Endpoints) == 1
		default:
			return false
		}
	}, "the view was not sent again once current")

	for len(r.errs) > 0 {
		<-r.errs
	}
	d.Close()
	eventually(t, 5*time.Second, func() bool { return len(r.errs) > 0 }, "the end of the view was not reported")
	err = <-r.errs
	t.Logf("reported: %v", err)
	assert.True(t, errors.Is(err, discovery.ErrClosed) && errors.Is(err, roster.ErrClosed), "%v", err)
}

// A resolver whose etcd connection is cut (reset, or a black hole) serves
// its last view meanwhile and follows etcd again once it is back; an
// endpoint whose instance did not change keeps equal attributes, so that
// gRPC keeps its connection.
func TestResolverFollowsThroughCutAndPause(t *testing.T) {
	for _, fault := range []string{"cut", "pause"} {
		t.Run(fault, func(t *testing.T) {
			m := etcdtest.Start(t)
			e := &env{m: m, cli: m.Client()}
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			d, err := discovery.New(etcdtest.NewClient(t, proxy.Endpoint()), discovery.WithProgressInterval(100*time.Millisecond))
			require.NoError(t, err)
			defer d.Close()
			rb, err := rostergrpc.NewResolverBuilder(d)
			require.NoError(t, err)
			for i, id := range []string{"a", "b", "c"} {
				putInstance(t, e, roster.Instance{Service: "cut", ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 1001+i)})
			}
			r := record(t, rb, "cut")
			before := r.next(t, endpoints(3))

			probe, err := d.Watch("cut") // shares the resolver's cache
			require.NoError(t, err)
			defer probe.Close()
			if fault == "cut" {
				proxy.Cut()
			} else {
				proxy.Pause()
			}
			eventually(t, 5*time.Second, func() bool { return probe.Err() != nil }, "the %s was not noticed", fault)
			_, err = e.cli.Delete(context.Background(), "/roster/services/cut/c")
			require.NoError(t, err)
			select {
			case s := <-r.states:
				t.Fatalf("a state while etcd is out of reach: %d endpoints", len(s.Endpoints))
			case <-time.After(300 * time.Millisecond): // nothing comes: the last view stands
			}
			proxy.Restore()
			after := r.next(t, endpoints(2))
			for i := range 2 {
				assert.True(t, before.Endpoints[i].Attributes.Equal(after.Endpoints[i].Attributes), "attributes of an unchanged instance")
			}
		})
	}
}
