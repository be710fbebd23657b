package rostergrpc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/rosterkit/roster/rostergrpc"
)

// Acceptance 3: roster_hash sends one key to one backend across 1,000
// calls, by WithHashKey or by the configured header, and a fifth backend
// takes about a fifth of the keys, from the others, moving no other key.
func TestHashStickyAndMinimalMovement(t *testing.T) {
	e := newEnv(t)
	var bs []*backend
	for i := range 5 {
		bs = append(bs, startBackend(t, fmt.Sprintf("h%d", i)))
	}
	for _, b := range bs[:4] {
		e.register(t, b, "hash", 0)
	}
	c := testgrpc.NewTestServiceClient(e.dial(t, "hash", `{"loadBalancingConfig":[{"roster_hash":{"header":"x-user"}}]}`))
	reaches(t, c, "h0", "h1", "h2", "h3")

	owner := func(key string, byHeader bool) string {
		t.Helper()
		ctx := rostergrpc.WithHashKey(context.Background(), key)
		if byHeader {
			ctx = metadata.AppendToOutgoingContext(context.Background(), "x-user", key)
		}
		name, err := call(ctx, c)
		require.NoError(t, err)
		return name
	}

	for _, byHeader := range []bool{false, true} {
		first := owner("alice", byHeader)
		same := 0
		for range 1000 {
			if owner("alice", byHeader) == first {
				same++
			}
		}
		t.Logf("header=%v: 1000 calls of key alice: %d on %s", byHeader, same, first)
		assert.Equal(t, 1000, same, "header=%v", byHeader)
	}
	assert.Equal(t, owner("bob", false), owner("bob", true), "WithHashKey and the header hash alike")

	const keys = 2000
	before := make([]string, keys)
	for i := range before {
		before[i] = owner(fmt.Sprintf("user-%d", i), false)
	}
	e.register(t, bs[4], "hash", 0)
	probe := 0
	eventually(t, 20*time.Second, func() bool { probe++; return owner(fmt.Sprint("probe-", probe), false) == "h4" },
		"h4 never got a call")
	moved, elsewhere := 0, 0
	for i := range before {
		now := owner(fmt.Sprintf("user-%d", i), false)
		switch {
		case now == before[i]:
		case now == "h4":
			moved++
		default:
			elsewhere++
		}
	}
	t.Logf("adding a 5th backend moved %d of %d keys (%.1f%%, 1/N = 20%%), %d between old ones",
		moved, keys, 100*float64(moved)/keys, elsewhere)
	assert.Zero(t, elsewhere, "keys moved between backends that stayed")
	assert.InDelta(t, 0.20, float64(moved)/keys, 0.07, "share of keys moved")
}
