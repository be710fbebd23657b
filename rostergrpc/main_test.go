package rostergrpc_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
	"github.com/rosterkit/roster/rostergrpc"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// holdSize is the ResponseSize of a request the backend holds until its
// gate opens.
const holdSize = 7

// backend is a real gRPC server on a free loopback port: the interop
// TestService, whose UnaryCall answers with the backend's name, after a
// delay, or fails, as the test sets it.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	addr string
	srv  *grpc.Server
	hs   *health.Server

	calls    atomic.Int64
	inflight atomic.Int64
	delay    atomic.Int64 // nanoseconds
	fail     atomic.Bool  // answer UNAVAILABLE
	lastCall atomic.Int64 // UnixNano of the last call's start
	gate     chan struct{}
	gateOnce sync.Once
}

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	b, stop, err := serveBackend(name)
	require.NoError(t, err)
	t.Cleanup(stop)
	return b
}

// serveBackend starts a backend outside of a test, for a child process.
func serveBackend(name string) (*backend, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	b := &backend{name: name, addr: lis.Addr().String(), srv: grpc.NewServer(), hs: health.NewServer(), gate: make(chan struct{})}
	testgrpc.RegisterTestServiceServer(b.srv, b)
	healthpb.RegisterHealthServer(b.srv, b.hs)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.srv.Serve(lis) }()
	return b, func() {
		b.open()
		b.srv.Stop()
		<-done
	}, nil
}

func (b *backend) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	b.lastCall.Store(time.Now().UnixNano())
	b.calls.Add(1)
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	if b.fail.Load() {
		return nil, status.Error(codes.Unavailable, b.name+" fails")
	}
	if d := time.Duration(b.delay.Load()); d > 0 {
		t := time.NewTimer(d) // the backend's service time, not synchronization
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if req.GetResponseSize() == holdSize {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &testgrpc.SimpleResponse{ServerId: b.name}, nil
}

// open releases the held calls.
func (b *backend) open() { b.gateOnce.Do(func() { close(b.gate) }) }

func (b *backend) instance(service string, weight int) roster.Instance {
	return roster.Instance{Service: service, ID: b.name, Addr: b.addr, Weight: weight}
}

// env is one etcd member, a Discoverer and a resolver builder over it.
type env struct {
	m   *etcdtest.Member
	cli *clientv3.Client
	d   *discovery.Discoverer
	rb  *rostergrpc.ResolverBuilder
}

func newEnv(t testing.TB, opts ...rostergrpc.Option) *env {
	t.Helper()
	m := etcdtest.Start(t)
	e := &env{m: m, cli: m.Client()}
	var err error
	e.d, err = discovery.New(e.cli)
	require.NoError(t, err)
	t.Cleanup(func() { e.d.Close() })
	e.rb, err = rostergrpc.NewResolverBuilder(e.d, opts...)
	require.NoError(t, err)
	return e
}

// register registers b with a registrar of its own, which the test may
// drain or close.
func (e *env) register(t testing.TB, b *backend, service string, weight int) *registry.Registrar {
	t.Helper()
	reg, err := registry.New(e.cli, registry.WithTTL(roster.MinTTL))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, reg.Register(ctx, b.instance(service, weight)))
	return reg
}

// dial connects to roster:///<target> with the service config.
func (e *env) dial(t testing.TB, target, serviceConfig string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithResolvers(e.rb),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	conn, err := grpc.NewClient("roster:///"+target, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func lb(policy string) string { return `{"loadBalancingConfig":[{"` + policy + `":{}}]}` }

// call makes one UnaryCall and returns the name of the backend that
// answered.
func call(ctx context.Context, c testgrpc.TestServiceClient, opts ...grpc.CallOption) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, opts...)
	return r.GetServerId(), err
}

// shares makes n sequential calls and counts who answered.
func shares(t testing.TB, c testgrpc.TestServiceClient, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		name, err := call(context.Background(), c)
		require.NoError(t, err)
		got[name]++
	}
	return got
}

// eventually waits for cond, checking it every few milliseconds, and fails
// the test after d.
func eventually(t testing.TB, d time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

// reaches waits until calls through c reach every named backend.
func reaches(t testing.TB, c testgrpc.TestServiceClient, names ...string) {
	t.Helper()
	seen := make(map[string]bool)
	eventually(t, 20*time.Second, func() bool {
		name, err := call(context.Background(), c, grpc.WaitForReady(true))
		if err == nil {
			seen[name] = true
		}
		for _, n := range names {
			if !seen[n] {
				return false
			}
		}
		return true
	}, "calls did not reach all of %v; saw %v", names, seen)
}
