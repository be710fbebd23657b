package rostergrpc_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster/rostergrpc"
)

var benchPolicies = []string{"round_robin", rostergrpc.WeightedName, rostergrpc.P2CName, rostergrpc.HashName}

// benchClients starts three backends and one connection per policy.
func benchClients(tb testing.TB) map[string]testgrpc.TestServiceClient {
	e := newEnv(tb)
	for _, name := range []string{"b1", "b2", "b3"} {
		e.register(tb, startBackend(tb, name), "bench", 0)
	}
	clients := make(map[string]testgrpc.TestServiceClient)
	for _, policy := range benchPolicies {
		c := testgrpc.NewTestServiceClient(e.dial(tb, "bench", lb(policy)))
		reaches(tb, c, "b1", "b2", "b3")
		clients[policy] = c
	}
	return clients
}

func unary(tb testing.TB, c testgrpc.TestServiceClient, ctx context.Context) {
	if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkUnary is one unary call over loopback through each balancer and
// gRPC's round_robin, to three backends:
//
//	go test -run '^$' -bench Unary -benchmem ./rostergrpc
func BenchmarkUnary(b *testing.B) {
	clients := benchClients(b)
	for _, policy := range benchPolicies {
		b.Run(policy, func(b *testing.B) {
			c := clients[policy]
			keys := make([]context.Context, 1024)
			for i := range keys {
				keys[i] = rostergrpc.WithHashKey(context.Background(), fmt.Sprint("user-", i))
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				unary(b, c, keys[i%len(keys)])
			}
		})
	}
}

// The balancers cost a unary call at most 5% over round_robin, measured in
// the same run: rounds of calls through each policy in turn (who goes
// first rotates), each round's time over round_robin's in the same round,
// the median of those ratios. Hash keys vary by call, so that roster_hash
// spreads calls as the others do. The machine's noise decides more than
// the picker here, so it runs with ROSTER_BENCH=1:
//
//	ROSTER_BENCH=1 go test -run UnaryRatio -v ./rostergrpc
func TestUnaryRatio(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") == "" {
		t.Skip("ROSTER_BENCH not set")
	}
	clients := benchClients(t)
	keys := make([]context.Context, 1024)
	for i := range keys {
		keys[i] = rostergrpc.WithHashKey(context.Background(), fmt.Sprint("user-", i))
	}
	const rounds, calls = 31, 1000
	per := make(map[string][]time.Duration)
	ratios := make(map[string][]float64)
	for r := range rounds {
		took := make(map[string]time.Duration)
		for i := range benchPolicies {
			policy := benchPolicies[(i+r)%len(benchPolicies)]
			c := clients[policy]
			start := time.Now()
			for k := range calls {
				unary(t, c, keys[k%len(keys)])
			}
			took[policy] = time.Since(start) / calls
			per[policy] = append(per[policy], took[policy])
		}
		for _, policy := range benchPolicies[1:] {
			ratios[policy] = append(ratios[policy], float64(took[policy])/float64(took["round_robin"]))
		}
	}
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	medianD := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	t.Logf("round_robin: %v per call (median of %d rounds of %d calls)", medianD(per["round_robin"]), rounds, calls)
	for _, policy := range benchPolicies[1:] {
		ratio := median(ratios[policy])
		t.Logf("%s: %v per call, %.3fx round_robin (median of the rounds' ratios)", policy, medianD(per[policy]), ratio)
		if ratio > 1.05 {
			t.Errorf("%s costs %.3fx round_robin per unary call, want ≤ 1.05x", policy, ratio)
		}
	}
}
