package discovery

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
)

const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// startServer runs a gRPC health server on a free loopback port that
// names itself in a response header, and returns its address.
func startServer(t *testing.T, name string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-server", name))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, grpchealth.NewServer())
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// callers returns which servers answered n calls.
func callers(t *testing.T, hc healthpb.HealthClient, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		var md metadata.MD
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md), grpc.WaitForReady(true))
		cancel()
		require.NoError(t, err)
		got[md.Get("x-server")[0]]++
	}
	return got
}

// Acceptance 7: grpc.NewClient("roster:///echo") spreads calls over the
// registered instances, stops calling deregistered or draining ones, and
// keeps following etcd after its watch was cut.
func TestGRPCResolverBalancesAndFollows(t *testing.T) {
	m := etcdtest.Start(t)
	direct := m.Client()
	for _, name := range []string{"a", "b", "c", "d"} {
		in := roster.Instance{Service: "echo", ID: name, Addr: startServer(t, name)}
		put(t, direct, in)
	}
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	d := newDiscoverer(t, etcdtest.NewClient(t, proxy.Endpoint()))

	conn, err := grpc.NewClient("roster:///echo",
		grpc.WithResolvers(NewResolverBuilder(d)),
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)

	eventually(t, func() bool { return len(callers(t, hc, 20)) == 4 }, "calls not spread over all instances")
	got := callers(t, hc, 400)
	for _, name := range []string{"a", "b", "c", "d"} {
		assert.InDelta(t, 100, got[name], 10, name)
	}

	del(t, direct, "echo", "b")
	eventually(t, func() bool { return callers(t, hc, 30)["b"] == 0 }, "deregistered instance still called")

	probe := watchT(t, d, "echo") // shares the resolver's cache
	drain, ok := probe.Snapshot().Lookup("c")
	require.True(t, ok)
	drain.Status = roster.StatusDraining
	put(t, direct, drain)
	eventually(t, func() bool { return callers(t, hc, 30)["c"] == 0 }, "draining instance still called")

	// Cut the resolver's etcd connection until its cache notices, then
	// deregister d: once back, the resolver must follow.
	proxy.Cut()
	eventually(t, func() bool { return probe.Err() != nil }, "cut not noticed")
	del(t, direct, "echo", "d")
	assert.Equal(t, map[string]int{"a": 10, "d": 10}, callers(t, hc, 20), "last view is served meanwhile")
	proxy.Restore()
	eventually(t, func() bool { return callers(t, hc, 30)["d"] == 0 }, "resolver stopped following after its watch died")
	assert.Equal(t, map[string]int{"a": 20}, callers(t, hc, 20))

	require.NoError(t, probe.Close())
	require.NoError(t, conn.Close())
	eventually(t, func() bool { return d.watching() == 0 }, "resolver did not release its cache")
}

func TestResolverStateCarriesInstancesAndFilters(t *testing.T) {
	insts := []roster.Instance{
		{Service: "svc", ID: "a", Addr: "10.0.0.1:80", Weight: 5, Metadata: map[string]string{"zone": "eu"}},
		{Service: "svc", ID: "b", Addr: "10.0.0.2:80", Metadata: map[string]string{"zone": "us"}},
		{Service: "svc", ID: "c", Addr: "10.0.0.3:80", Metadata: map[string]string{"zone": "eu"}, Status: roster.StatusDraining},
	}
	snap := NewSnapshot("svc", insts...)
	target := resolver.Target{URL: url.URL{Scheme: Scheme, Path: "/svc", RawQuery: "zone=eu"}}
	assert.Equal(t, "svc", target.Endpoint())
	r := &grpcResolver{filter: MatchMetadata(map[string]string{"zone": target.URL.Query().Get("zone")})}
	st := r.state(snap)
	require.Len(t, st.Endpoints, 1)
	assert.Empty(t, st.Addresses, "endpoints only: gRPC's Addresses field is deprecated")
	assert.Equal(t, "10.0.0.1:80", st.Endpoints[0].Addresses[0].Addr)
	got, ok := InstanceFromAttributes(st.Endpoints[0].Attributes)
	require.True(t, ok)
	assert.Equal(t, 5, got.Weight)
	assert.Equal(t, "eu", got.Metadata["zone"])
	// Equal content gives equal attributes, so gRPC keeps its connections
	// across snapshots.
	again := r.state(NewSnapshot("svc", append([]roster.Instance(nil), insts...)...))
	assert.True(t, st.Endpoints[0].Attributes.Equal(again.Endpoints[0].Attributes))
	_, ok = InstanceFromAttributes(nil)
	assert.False(t, ok)
}
