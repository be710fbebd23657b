package rostergrpc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster/rostergrpc"
)

// loadShares runs callers concurrent callers for d and counts who answered.
func loadShares(t *testing.T, c testgrpc.TestServiceClient, callers int, d time.Duration) (map[string]int, int) {
	t.Helper()
	var mu sync.Mutex
	got := make(map[string]int)
	total := 0
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range callers {
		wg.Go(func() {
			for time.Now().Before(end) {
				name, err := call(context.Background(), c)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[name]++
				total++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got, total
}

// Acceptance 2: with one backend answering in 20 ms and two at once,
// roster_p2c sends the slow one under 15% of the calls, one caller or
// several; once it is fast again its share comes back.
func TestP2CAvoidsSlowBackendAndRecovers(t *testing.T) {
	e := newEnv(t)
	slow, f1, f2 := startBackend(t, "slow"), startBackend(t, "fast1"), startBackend(t, "fast2")
	for _, b := range []*backend{slow, f1, f2} {
		e.register(t, b, "p2c", 0)
	}
	// A short decay, so that the recovery fits in a test.
	c := testgrpc.NewTestServiceClient(e.dial(t, "p2c", `{"loadBalancingConfig":[{"roster_p2c":{"decay":"1s"}}]}`))
	reaches(t, c, "slow", "fast1", "fast2")
	slow.delay.Store(int64(20 * time.Millisecond))

	for _, callers := range []int{1, 4} {
		// Up to three rounds: on a machine loaded enough that calls to the
		// fast backends take tens of milliseconds too, 20 ms is no longer
		// slow, and the slow one's probes are a larger share of fewer
		// calls. A picker that does not avoid it gets a third every round.
		share := 1.0
		for round := 1; round <= 3 && share >= 0.15; round++ {
			got, total := loadShares(t, c, callers, 2*time.Second)
			share = float64(got["slow"]) / float64(total)
			t.Logf("%d caller(s), slow backend at 20 ms, round %d: %d calls, slow %d (%.1f%%), fast %d + %d",
				callers, round, total, got["slow"], 100*share, got["fast1"], got["fast2"])
		}
		assert.Less(t, share, 0.15, "share of the slow backend with %d caller(s)", callers)
	}

	slow.delay.Store(0)
	var share float64
	start := time.Now()
	eventually(t, 20*time.Second, func() bool {
		got, total := loadShares(t, c, 4, 500*time.Millisecond)
		share = float64(got["slow"]) / float64(total)
		return share > 0.25
	}, "the slow backend's share did not come back (%.1f%%)", 100*share)
	t.Logf("fast again: its share is %.1f%% within %v (decay 1s)", 100*share, time.Since(start).Round(100*time.Millisecond))
}

// Without latency (decay aside) P2C balances on calls in flight: a
// sanity check that the policy spreads calls over equal backends.
func TestP2CSpreadsOverEqualBackends(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"e1", "e2", "e3"} {
		e.register(t, startBackend(t, name), "p2ceq", 0)
	}
	c := testgrpc.NewTestServiceClient(e.dial(t, "p2ceq", lb(rostergrpc.P2CName)))
	reaches(t, c, "e1", "e2", "e3")
	// Up to three rounds: on a loaded machine the latencies of equal
	// backends differ by chance for a while, and p2c rightly follows them.
	var got map[string]int
	var total int
	even := func() bool {
		for _, name := range []string{"e1", "e2", "e3"} {
			if d := float64(got[name])/float64(total) - 1.0/3; d < -0.12 || d > 0.12 {
				return false
			}
		}
		return true
	}
	for round := 1; round <= 3 && (round == 1 || !even()); round++ {
		got, total = loadShares(t, c, 4, time.Second)
		t.Logf("equal backends, round %d: %v of %d", round, got, total)
	}
	for _, name := range []string{"e1", "e2", "e3"} {
		assert.InDelta(t, 1.0/3, float64(got[name])/float64(total), 0.12, name)
	}
}
