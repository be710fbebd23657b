package lock_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// Contended mutex throughput and hand-off latency, ours against etcd's
// concurrency.Mutex on the same member in the same run. Every contender has
// its own client and session and does nothing while it holds, so the
// figures measure the lock alone: how fast it passes from one holder to
// the next.
//
//	go test -run '^$' -bench MutexContention -benchtime 400x ./lock
func BenchmarkMutexContention(b *testing.B) {
	m := etcdtest.Start(b)
	for _, n := range []int{1, 8, 32} {
		for _, impl := range []string{"etcd", "roster"} {
			b.Run(fmt.Sprintf("%s/contenders=%d", impl, n), func(b *testing.B) {
				cs := newContenders(b, m, impl, n)
				each := (b.N + n - 1) / n
				b.ResetTimer()
				h, elapsed, err := contend(context.Background(), cs, each, nil)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				f := summarise(h, elapsed)
				b.ReportMetric(f.rate(), "acq/s")
				if n > 1 {
					b.ReportMetric(float64(f.p50.Microseconds())/1000, "handoff-p50-ms")
					b.ReportMetric(float64(f.p99.Microseconds())/1000, "handoff-p99-ms")
				}
			})
		}
	}
}

// newContenders makes n contenders for lock "bench", each on its own
// client, closed when tb ends.
func newContenders(tb testing.TB, m *etcdtest.Member, impl string, n int) []contender {
	cs := make([]contender, n)
	for i := range cs {
		cli := m.Client()
		if impl == "etcd" {
			c := newEtcdContender(tb, cli, keys.LockPfx(keys.DefaultNamespace, "bench"))
			tb.Cleanup(c.close)
			cs[i] = c
		} else {
			cs[i] = rosterContender{newMutex(tb, cli, "bench")}
		}
	}
	return cs
}

// TestBenchMutexContention logs the same comparison as a table, with the
// acquisitions per contender the baseline used (8 × 50). Rounds
// alternate between the two implementations so that load from elsewhere
// on the machine hits both alike. Enable with ROSTER_BENCH=1.
func TestBenchMutexContention(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") != "1" {
		t.Skip("set ROSTER_BENCH=1 to run")
	}
	const rounds = 3
	ctx := testCtx(t)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	m := etcdtest.Start(t)
	for _, tc := range []struct{ n, each int }{{1, 200}, {8, 50}, {32, 13}} {
		runs := map[string][]figures{}
		for range rounds {
			for _, impl := range []string{"etcd", "roster"} {
				cs := newContenders(t, m, impl, tc.n)
				h, elapsed, err := contend(ctx, cs, tc.each, nil)
				if err != nil {
					t.Fatal(err)
				}
				if v := h.exclusionViolation(); v != "" {
					t.Fatalf("%s: %s", impl, v)
				}
				runs[impl] = append(runs[impl], summarise(h, elapsed))
				for _, c := range cs {
					c.close()
				}
			}
		}
		e, r := median(runs["etcd"]), median(runs["roster"])
		t.Logf("%2d contenders × %3d, median of %d rounds:", tc.n, tc.each, rounds)
		t.Logf("    etcd   %v", e)
		t.Logf("    roster %v", r)
		if tc.n == 1 {
			t.Logf("    throughput ratio %.2fx (no hand-offs: nobody waits)", r.rate()/e.rate())
			continue
		}
		t.Logf("    throughput ratio %.2fx; hand-off p99 ratio %.2fx", r.rate()/e.rate(),
			float64(e.p99)/float64(max(r.p99, time.Microsecond)))
	}
}

// median returns the run of median throughput.
func median(fs []figures) figures {
	s := slices.Clone(fs)
	slices.SortFunc(s, func(a, b figures) int { return int(a.elapsed - b.elapsed) })
	return s[len(s)/2]
}
