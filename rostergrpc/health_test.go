package rostergrpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/registry"
	"github.com/rosterkit/roster/rostergrpc"
)

// checker asks a backend's health service over the network.
func checker(t *testing.T, b *backend) func(service string) healthpb.HealthCheckResponse_ServingStatus {
	conn, err := grpc.NewClient(b.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	hc := healthpb.NewHealthClient(conn)
	return func(service string) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		return r.Status
	}
}

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
)

// Health follows the registration: serving is SERVING; the application's
// drain, an operator's drain, and the registrar's close are NOT_SERVING;
// an operator's undrain is SERVING again.
func TestHealthFollowsRegistration(t *testing.T) {
	e := newEnv(t)
	b := startBackend(t, "hb")
	reg, err := registry.New(e.cli, registry.WithTTL(roster.MinTTL))
	require.NoError(t, err)
	defer reg.Close()
	h, err := rostergrpc.NewHealth(reg, b.hs)
	require.NoError(t, err)
	defer h.Close()
	check := checker(t, b)
	ctx := context.Background()

	require.NoError(t, reg.Register(ctx, b.instance("hsvc", 0)))
	eventually(t, 5*time.Second, func() bool { return check("hsvc") == serving }, "not SERVING once registered")
	assert.Equal(t, serving, check(""))

	require.NoError(t, h.Drain(ctx, "hsvc", "hb"))
	assert.Equal(t, notServing, check("hsvc"), "drained through Health")
	assert.Equal(t, notServing, check(""))

	// Serving again by the application's Register, then Sync.
	require.NoError(t, reg.Register(ctx, b.instance("hsvc", 0)))
	h.Sync()
	assert.Equal(t, serving, check("hsvc"))

	require.NoError(t, registry.RequestDrain(ctx, e.cli, "hsvc", "hb", "maintenance"))
	eventually(t, 5*time.Second, func() bool { return check("hsvc") == notServing }, "an operator's drain is not NOT_SERVING")
	require.NoError(t, registry.CancelDrain(ctx, e.cli, "hsvc", "hb"))
	eventually(t, 5*time.Second, func() bool { return check("hsvc") == serving }, "an operator's undrain is not SERVING")

	require.NoError(t, reg.Close())
	eventually(t, 5*time.Second, func() bool { return check("hsvc") == notServing && check("") == notServing },
		"a closed registrar's services are not NOT_SERVING")
	require.NoError(t, h.Close())
	require.NoError(t, h.Close())
}

// gRPC's client-side health check (healthCheckConfig) works under roster's
// balancers: a backend that says NOT_SERVING gets no calls, though it is
// registered and serving in etcd.
func TestClientHealthCheckUnderRosterBalancers(t *testing.T) {
	e := newEnv(t)
	sick, well := startBackend(t, "sick"), startBackend(t, "well")
	e.register(t, sick, "hc", 0)
	e.register(t, well, "hc", 0)
	for _, policy := range []string{rostergrpc.WeightedName, rostergrpc.P2CName, rostergrpc.HashName} {
		sick.hs.SetServingStatus("hc", serving)
		well.hs.SetServingStatus("hc", serving)
		c := testgrpc.NewTestServiceClient(e.dial(t, "hc",
			`{"loadBalancingConfig":[{"`+policy+`":{}}],"healthCheckConfig":{"serviceName":"hc"}}`))
		reaches(t, c, "sick", "well")
		sick.hs.SetServingStatus("hc", notServing)
		eventually(t, 5*time.Second, func() bool {
			before := sick.calls.Load()
			shares(t, c, 20)
			return sick.calls.Load() == before
		}, "%s: a NOT_SERVING backend still gets calls", policy)
	}
}

// RegisterWhileServing registers while the application says SERVING and
// drains otherwise; it returns ctx's error, or Register's when it cannot
// succeed.
func TestRegisterWhileServing(t *testing.T) {
	e := newEnv(t)
	b := startBackend(t, "rw")
	reg, err := registry.New(e.cli, registry.WithTTL(roster.MinTTL))
	require.NoError(t, err)
	defer reg.Close()
	cache, err := e.d.Watch("rws")
	require.NoError(t, err)
	defer cache.Close()
	status := func() roster.Status {
		in, ok := cache.Snapshot().Lookup("rw")
		if !ok {
			return "absent"
		}
		if in.Serving() {
			return roster.StatusServing
		}
		return in.Status
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rostergrpc.RegisterWhileServing(ctx, reg, b.hs, "ready", b.instance("rws", 0)) }()
	require.NoError(t, cache.WaitSynced(context.Background()))
	assert.Equal(t, roster.Status("absent"), status(), "registered before the application is ready")

	b.hs.SetServingStatus("ready", serving)
	eventually(t, 5*time.Second, func() bool { return status() == roster.StatusServing }, "not registered once SERVING")
	b.hs.SetServingStatus("ready", notServing)
	eventually(t, 5*time.Second, func() bool { return status() == roster.StatusDraining }, "not drained once NOT_SERVING")
	b.hs.SetServingStatus("ready", serving)
	eventually(t, 5*time.Second, func() bool { return status() == roster.StatusServing }, "not serving again")

	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("RegisterWhileServing did not return after its context ended")
	}
	assert.Equal(t, roster.StatusServing, status(), "left as it was")

	// Another owner of the same instance: an error at once.
	other, err := registry.New(e.cli, registry.WithTTL(roster.MinTTL))
	require.NoError(t, err)
	defer other.Close()
	err = rostergrpc.RegisterWhileServing(context.Background(), other, b.hs, "ready", b.instance("rws", 0))
	assert.ErrorIs(t, err, registry.ErrDuplicate)

	// A closed registrar: an error at once too.
	require.NoError(t, other.Close())
	err = rostergrpc.RegisterWhileServing(context.Background(), other, b.hs, "ready", roster.Instance{Service: "rws", ID: "x", Addr: b.addr})
	assert.True(t, errors.Is(err, roster.ErrClosed), "%v", err)
	_ = discovery.ErrClosed
}
