package rostergrpc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster/rostergrpc"
)

// Acceptance 4: once etcd has applied a Drain, the backend gets no new
// call within 100 ms, under load, and the calls it had in flight finish.
func TestDrainStopsNewCallsAndLetsInFlightFinish(t *testing.T) {
	for _, policy := range []string{rostergrpc.P2CName, rostergrpc.WeightedName, rostergrpc.HashName} {
		t.Run(policy, func(t *testing.T) {
			e := newEnv(t)
			a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
			regA := e.register(t, a, "drain", 0)
			e.register(t, b, "drain", 0)
			e.register(t, c, "drain", 0)
			sc := lb(policy)
			if policy == rostergrpc.P2CName {
				// A backend whose first calls looked slow (a loaded machine)
				// is measured again a tenth of the decay later: 100 ms, not
				// the default second, so that a gets its share of the load.
				sc = `{"loadBalancingConfig":[{"roster_p2c":{"decay":"1s"}}]}`
			}
			client := testgrpc.NewTestServiceClient(e.dial(t, "drain", sc))
			reaches(t, client, "a", "b", "c")

			// Calls held in flight, two or more on every backend, so that
			// they weigh alike on each for roster_p2c.
			var held sync.WaitGroup
			heldErrs := make(chan error, 64)
			for started := int64(1); min(a.inflight.Load(), b.inflight.Load(), c.inflight.Load()) < 2; started++ {
				require.Less(t, started, int64(40), "held calls never reached every backend twice")
				held.Go(func() {
					_, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{ResponseSize: holdSize})
					heldErrs <- err
				})
				eventually(t, 5*time.Second, func() bool {
					return a.inflight.Load()+b.inflight.Load()+c.inflight.Load() == started
				}, "held call %d not in flight", started)
			}

			// Load: callers with keys spread over the ring.
			ctx, stop := context.WithCancel(context.Background())
			var load sync.WaitGroup
			failed := make(chan error, 1)
			for g := range 4 {
				load.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						cctx := rostergrpc.WithHashKey(ctx, fmt.Sprint(g, "-", i%1000))
						if _, err := call(cctx, client); err != nil && ctx.Err() == nil {
							select {
							case failed <- err:
							default:
							}
						}
					}
				})
			}
			eventually(t, 5*time.Second, func() bool { return a.calls.Load() > 50 }, "a gets no load")

			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			require.NoError(t, regA.Drain(dctx, "drain", "a"))
			cancel()
			applied := time.Now() // etcd has applied the drain by the time Drain returns
			callsAtDrain := a.calls.Load()

			// Wait for a quiet 300 ms on a, then look at when its last call came.
			eventually(t, 5*time.Second, func() bool {
				return time.Since(time.Unix(0, a.lastCall.Load())) > 300*time.Millisecond
			}, "a still gets calls 5 s after the drain")
			last := time.Unix(0, a.lastCall.Load())
			callsAfter := a.calls.Load()
			// The load goes on meanwhile, on b and c: roster_p2c may rightly
			// send nearly all of it to whichever of the two answers faster.
			others := func() int64 { return b.calls.Load() + c.calls.Load() }
			before := others()
			eventually(t, 5*time.Second, func() bool { return others() > before+100 }, "the load stopped")
			stop()
			load.Wait()

			propagation := last.Sub(applied)
			t.Logf("%s: last new call on the drained backend %v after etcd applied the drain (%d calls after Drain returned); then none in %v",
				policy, propagation.Round(100*time.Microsecond), callsAfter-callsAtDrain, time.Since(last).Round(time.Millisecond))
			assert.LessOrEqual(t, propagation, 100*time.Millisecond, "drain propagation")
			assert.Equal(t, callsAfter, a.calls.Load(), "a got calls after the quiet period")
			select {
			case err := <-failed:
				t.Fatalf("a call failed under the drain: %v", err)
			default:
			}

			// The held calls, on a too, finish.
			assert.GreaterOrEqual(t, a.inflight.Load(), int64(2), "a's held calls")
			a.open()
			b.open()
			c.open()
			held.Wait()
			close(heldErrs)
			for err := range heldErrs {
				assert.NoError(t, err, "a call in flight through the drain")
			}
		})
	}
}
