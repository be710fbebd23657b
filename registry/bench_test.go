package registry_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// benchSizes are the registration sizes measured: how cost grows.
var benchSizes = []int{100, 1000, 10000}

// registerRoster registers n instances with a Registrar, the way an
// application would, and closes it (revoking the lease).
func registerRoster(ctx context.Context, cli *clientv3.Client, n int) error {
	return registerRosterWith(ctx, cli, n)
}

// meters is a real SDK meter provider, with a reader, for the runs with
// metrics on.
var meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))

// registerRosterMetrics is registerRoster recording its metrics with an
// SDK meter provider.
func registerRosterMetrics(ctx context.Context, cli *clientv3.Client, n int) error {
	return registerRosterWith(ctx, cli, n, registry.WithMeterProvider(meters))
}

func registerRosterWith(ctx context.Context, cli *clientv3.Client, n int, opts ...registry.Option) error {
	r, err := registry.New(cli, opts...)
	if err != nil {
		return err
	}
	for i := range n {
		if err := r.Register(ctx, roster.Instance{Service: "bench", ID: fmt.Sprintf("i%05d", i), Addr: "10.0.0.1:8080"}); err != nil {
			return err
		}
	}
	return r.Shutdown(ctx)
}

// registerRaw is the baseline: what an application does with clientv3
// alone. One lease, n plain puts of the same encoded values, the keep-alive
// stream started (not awaited: clientv3 sends its first keep-alive on a
// 500 ms tick, which would put up to half a second of idle time into the
// baseline), then a revoke. It has no ownership check, no watch and no
// recovery.
func registerRaw(ctx context.Context, cli *clientv3.Client, n int) error {
	return registerRawWith(ctx, cli, n, func(key, val string, lease clientv3.LeaseID) error {
		_, err := cli.Put(ctx, key, val, clientv3.WithLease(lease))
		return err
	})
}

// registerGuarded is registerRaw with each put guarded, as the registrar's
// are, so that it never overwrites a key that exists: it tells the cost of
// the guard from the cost of the rest of the registrar.
func registerGuarded(ctx context.Context, cli *clientv3.Client, n int) error {
	return registerRawWith(ctx, cli, n, func(key, val string, lease clientv3.LeaseID) error {
		_, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
			Commit()
		return err
	})
}

func registerRawWith(ctx context.Context, cli *clientv3.Client, n int, put func(key, val string, lease clientv3.LeaseID) error) error {
	lease, err := cli.Grant(ctx, int64(roster.DefaultTTL/time.Second))
	if err != nil {
		return err
	}
	for i := range n {
		val, err := roster.EncodeInstance(roster.Instance{Service: "bench", ID: fmt.Sprintf("i%05d", i), Addr: "10.0.0.1:8080"})
		if err != nil {
			return err
		}
		if err := put(fmt.Sprintf("/roster/services/bench/i%05d", i), string(val), lease.ID); err != nil {
			return err
		}
	}
	kctx, cancel := context.WithCancel(ctx)
	ch, err := cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		cancel()
		return err
	}
	cancel()
	for range ch { // drained so the client is not left with a full queue
	}
	_, err = cli.Revoke(ctx, lease.ID)
	return err
}

// Acceptance 7: registering 1,000 instances and keeping them alive, against
// raw clientv3 in the same run, and how that grows from 100 to 10,000:
//
//	go test -run '^$' -bench Register -benchtime 3x ./registry
func BenchmarkRegister(b *testing.B) {
	m := etcdtest.Start(b)
	cli := m.Client()
	ctx := context.Background()
	for _, n := range benchSizes {
		for _, c := range []struct {
			name string
			run  func(context.Context, *clientv3.Client, int) error
		}{{"roster", registerRoster}, {"roster+metrics", registerRosterMetrics}, {"raw", registerRaw}, {"guarded", registerGuarded}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				for b.Loop() {
					if err := c.run(ctx, cli, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/instance")
			})
		}
	}
}

// TestRegisterOverhead measures the same as BenchmarkRegister in
// alternating rounds, which cancels out drift on a shared machine, and logs
// the median ratio for each size. It runs only with ROSTER_BENCH=1; the
// sizes are 1,000 unless ROSTER_SCALE lists others ("100,1000,10000"):
//
//	ROSTER_BENCH=1 go test -run RegisterOverhead -v ./registry
//
// Each size runs the registrar with metrics off and with metrics on (an
// OpenTelemetry SDK meter provider), in the same rounds.
func TestRegisterOverhead(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") != "1" {
		t.Skip("set ROSTER_BENCH=1 to measure")
	}
	sizes := []int{1000}
	if s := os.Getenv("ROSTER_SCALE"); s != "" {
		sizes = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				t.Fatalf("ROSTER_SCALE: %q is not a size", f)
			}
			sizes = append(sizes, n)
		}
	}
	m := etcdtest.Start(t)
	cli := m.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, n := range sizes {
		rounds := 7
		if n > 1000 {
			rounds = 3 // each round takes seconds
		}
		var ours, metered, raw, guarded []time.Duration
		for round := range rounds {
			cs := []struct {
				run func(context.Context, *clientv3.Client, int) error
				out *[]time.Duration
			}{{registerRoster, &ours}, {registerRosterMetrics, &metered}, {registerRaw, &raw}, {registerGuarded, &guarded}}
			if round%2 == 1 { // none always goes first
				slices.Reverse(cs)
			}
			for _, c := range cs {
				start := time.Now()
				if err := c.run(ctx, cli, n); err != nil {
					t.Fatal(err)
				}
				*c.out = append(*c.out, time.Since(start))
			}
		}
		mo, mm, mr, mg := median(ours), median(metered), median(raw), median(guarded)
		t.Logf("%d instances, median of %d rounds: roster %v (%v/instance), raw clientv3 %v (%v/instance), ratio %.2f; with metrics on (SDK meter provider) %v, ratio %.2f; raw with guarded puts %v, ratio %.2f",
			n, rounds, mo.Round(time.Millisecond), mo/time.Duration(n), mr.Round(time.Millisecond), mr/time.Duration(n), float64(mo)/float64(mr),
			mm.Round(time.Millisecond), float64(mm)/float64(mr),
			mg.Round(time.Millisecond), float64(mo)/float64(mg))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
