package rostergrpc_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/resolver"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/rostergrpc"
)

// Importing the package registers the three balancers, and their configs
// parse with clear errors for bad values.
func TestBalancerConfig(t *testing.T) {
	for _, tc := range []struct {
		policy, config string
		err            string // "" for valid
	}{
		{rostergrpc.WeightedName, `{}`, ""},
		{rostergrpc.WeightedName, `null`, ""},
		{rostergrpc.P2CName, `{"ejectAfter":3,"ejectFor":"10s"}`, ""},
		{rostergrpc.P2CName, `{"ejectAfter":0,"ejectFor":"0s","decay":"2.5s"}`, ""},
		{rostergrpc.P2CName, `{"noEjection":true}`, ""},
		{rostergrpc.P2CName, `{"failOn":["UNAVAILABLE","RESOURCE_EXHAUSTED",13]}`, ""},
		{rostergrpc.HashName, `{"header":"X-User","virtualNodes":200}`, ""},
		{rostergrpc.HashName, `{"someFutureField":1}`, ""}, // ignored, as gRPC asks
		{rostergrpc.P2CName, `{"ejectAfter":-1}`, "ejectAfter -1: negative"},
		{rostergrpc.P2CName, `{"ejectFor":"-1s"}`, "ejectFor: \"-1s\": negative"},
		{rostergrpc.P2CName, `{"ejectFor":"soon"}`, "want a duration"},
		{rostergrpc.P2CName, `{"ejectFor":10}`, "ejectFor"},
		{rostergrpc.P2CName, `{"decay":"-2s"}`, "decay"},
		{rostergrpc.WeightedName, `{"ejectAfter":"3"}`, "ejectAfter"},
		{rostergrpc.WeightedName, `{"failOn":["OK"]}`, "cannot be a failure"},
		{rostergrpc.WeightedName, `{"failOn":["NO_SUCH_CODE"]}`, "invalid code"},
		{rostergrpc.HashName, `{"header":"x-user-bin"}`, "not a metadata key"},
		{rostergrpc.HashName, `{"header":"grpc-timeout"}`, "not a metadata key"},
		{rostergrpc.HashName, `{"header":"x user"}`, "not a metadata key"},
		{rostergrpc.HashName, `{"virtualNodes":-1}`, "virtualNodes -1"},
		{rostergrpc.HashName, `{"virtualNodes":20000}`, "virtualNodes 20000"},
		{rostergrpc.HashName, `[1,2]`, "roster_hash config"},
	} {
		b := balancer.Get(tc.policy)
		require.NotNil(t, b, "%s not registered", tc.policy)
		_, err := b.(balancer.ConfigParser).ParseConfig(json.RawMessage(tc.config))
		if tc.err == "" {
			assert.NoError(t, err, "%s %s", tc.policy, tc.config)
			continue
		}
		if assert.Error(t, err, "%s %s", tc.policy, tc.config) {
			assert.ErrorIs(t, err, roster.ErrInvalidOption)
			assert.Contains(t, err.Error(), tc.err)
			assert.Contains(t, err.Error(), tc.policy)
		}
	}
}

// A bad balancer config fails grpc.NewClient with the parser's message.
func TestBadServiceConfigFailsNewClient(t *testing.T) {
	m := startDiscoverer(t)
	rb, err := rostergrpc.NewResolverBuilder(m)
	require.NoError(t, err)
	_, err = grpc.NewClient("roster:///svc", grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"roster_p2c":{"ejectFor":"-5s"}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `roster_p2c config`)
	assert.Contains(t, err.Error(), `negative`)
}

func startDiscoverer(t *testing.T) *discovery.Discoverer { return newEnv(t).d }

// The zero rule: zero options are the defaults, negative ones an error
// wrapping roster.ErrInvalidOption; nil inputs are errors, not panics.
func TestOptionsAndNilInputs(t *testing.T) {
	d := startDiscoverer(t)
	for _, tc := range []struct {
		name string
		opt  rostergrpc.Option
		err  error
	}{
		{"nil option", nil, nil},
		{"nil logger", rostergrpc.WithLogger(nil), nil},
		{"nil meter provider", rostergrpc.WithMeterProvider(nil), nil},
		{"zero resolve interval", rostergrpc.WithResolveInterval(0), nil},
		{"resolve interval", rostergrpc.WithResolveInterval(time.Millisecond), nil},
		{"negative resolve interval", rostergrpc.WithResolveInterval(-time.Second), roster.ErrInvalidOption},
	} {
		_, err := rostergrpc.NewResolverBuilder(d, tc.opt)
		if tc.err == nil {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorIs(t, err, tc.err, tc.name)
			assert.Contains(t, err.Error(), "WithResolveInterval(-1s)", tc.name)
		}
	}

	_, err := rostergrpc.NewResolverBuilder(nil)
	assert.ErrorIs(t, err, roster.ErrInvalidOption)
	var zero rostergrpc.ResolverBuilder
	_, err = zero.Build(resolver.Target{}, nil, resolver.BuildOptions{})
	assert.ErrorIs(t, err, roster.ErrInvalidOption)
	assert.Equal(t, rostergrpc.Scheme, zero.Scheme())

	_, err = rostergrpc.NewHealth(nil, health.NewServer())
	assert.ErrorIs(t, err, roster.ErrInvalidOption)
	var h *rostergrpc.Health
	assert.NoError(t, h.Close())
	h.Sync()
	assert.ErrorIs(t, h.Drain(context.Background(), "s", "i"), roster.ErrInvalidOption)
	var nilCtx context.Context
	assert.ErrorIs(t, rostergrpc.RegisterWhileServing(nilCtx, nil, nil, "", roster.Instance{}), roster.ErrInvalidOption)
	assert.NotNil(t, rostergrpc.WithHashKey(nilCtx, "k"))

	_, ok := rostergrpc.InstanceFromAttributes(nil)
	assert.False(t, ok)

	// A closed Discoverer: Build fails with ErrClosed, at once.
	require.NoError(t, d.Close())
	rb, err := rostergrpc.NewResolverBuilder(d)
	require.NoError(t, err)
	conn, err := grpc.NewClient("roster:///svc", grpc.WithResolvers(rb), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = conn.Invoke(ctx, "/grpc.testing.TestService/EmptyCall", nil, nil)
	assert.ErrorContains(t, err, "closed")
}
