package rostergrpc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "google.golang.org/grpc/balancer/ringhash" // registers ring_hash_experimental
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/rosterkit/roster/rostergrpc"
)

// Acceptance 1: weights 1:3 give roster_weighted shares of 4,000 calls
// within 10% of 25/75, and the resolver's weights make gRPC's ring_hash
// spread keys in proportion within 15%.
func TestWeightedShares(t *testing.T) {
	e := newEnv(t)
	light, heavy := startBackend(t, "light"), startBackend(t, "heavy")
	e.register(t, light, "w", 1)
	e.register(t, heavy, "w", 3)
	c := testgrpc.NewTestServiceClient(e.dial(t, "w", lb(rostergrpc.WeightedName)))
	reaches(t, c, "light", "heavy")

	got := shares(t, c, 4000)
	t.Logf("roster_weighted, weights 1:3, 4000 calls: light %d (%.1f%%), heavy %d (%.1f%%)",
		got["light"], 100*float64(got["light"])/4000, got["heavy"], 100*float64(got["heavy"])/4000)
	assert.InEpsilon(t, 1000, got["light"], 0.10)
	assert.InEpsilon(t, 3000, got["heavy"], 0.10)
}

func TestRingHashHonoursWeights(t *testing.T) {
	e := newEnv(t)
	light, heavy := startBackend(t, "light"), startBackend(t, "heavy")
	e.register(t, light, "rh", 1)
	e.register(t, heavy, "rh", 3)
	conn := e.dial(t, "rh", `{"loadBalancingConfig":[{"ring_hash_experimental":{"minRingSize":4096,"requestHashHeader":"x-key"}}]}`)
	c := testgrpc.NewTestServiceClient(conn)

	got := make(map[string]int)
	const keys = 4000
	for i := range keys {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-key", fmt.Sprintf("user-%d", i))
		name, err := call(ctx, c)
		require.NoError(t, err)
		got[name]++
	}
	t.Logf("ring_hash, weights 1:3, %d keys: light %d (%.1f%%), heavy %d (%.1f%%)",
		keys, got["light"], 100*float64(got["light"])/keys, got["heavy"], 100*float64(got["heavy"])/keys)
	assert.InEpsilon(t, keys/4, got["light"], 0.15)
	assert.InEpsilon(t, keys*3/4, got["heavy"], 0.15)
}
