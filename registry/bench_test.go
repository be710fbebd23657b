package registry_test

import (
	"context"
	"errors"
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
// alone. One lease kept alive (the keep-alive stream started, not awaited:
// clientv3 sends its first keep-alive on a 500 ms tick, which would put up
// to half a second of idle time into the baseline), n plain puts of the
// same encoded values, then a revoke. It has no ownership check, no watch
// and no recovery.
func registerRaw(ctx context.Context, cli *clientv3.Client, n int) error {
	return registerRawWith(ctx, cli, n, plainPut)
}

// registerGuarded is registerRaw with each put guarded, as the registrar's
// are, so that it never overwrites a key that exists: it tells the cost of
// the guard from the cost of the rest of the registrar.
func registerGuarded(ctx context.Context, cli *clientv3.Client, n int) error {
	return registerRawWith(ctx, cli, n, guardedPut)
}

func plainPut(ctx context.Context, cli *clientv3.Client, key, val string, lease clientv3.LeaseID) error {
	_, err := cli.Put(ctx, key, val, clientv3.WithLease(lease))
	return err
}

func guardedPut(ctx context.Context, cli *clientv3.Client, key, val string, lease clientv3.LeaseID) error {
	_, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
		Commit()
	return err
}

func registerRawWith(ctx context.Context, cli *clientv3.Client, n int, put func(context.Context, *clientv3.Client, string, string, clientv3.LeaseID) error) error {
	l := rawLeg(ctx, cli, "bench", put)
	if err := l.start(); err != nil {
		return err
	}
	for i := range n {
		if err := l.put(i); err != nil {
			return errors.Join(err, l.stop())
		}
	}
	return l.stop()
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

// TestRegisterOverhead measures what BenchmarkRegister does, op by op: each
// round runs the four ways side by side, one registration of each in turn
// (in a rotating order, each on its own client and under its own service),
// so that the disk's drift, which moves a WAL fsync by tens of percent
// within seconds, reaches all four alike. It logs each round's ratio of
// total time and the median over the rounds. It runs only with
// ROSTER_BENCH=1; the sizes are 1,000 unless ROSTER_SCALE lists others
// ("100,1000,10000"):
//
//	ROSTER_BENCH=1 go test -run RegisterOverhead -v ./registry
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, n := range sizes {
		rounds := 7
		if n > 1000 {
			rounds = 3 // each round takes seconds
		}
		legs := []*leg{
			rosterLeg(ctx, m.Client(), "roster"),
			rosterLeg(ctx, m.Client(), "metered", registry.WithMeterProvider(meters)),
			rawLeg(ctx, m.Client(), "raw", plainPut),
			rawLeg(ctx, m.Client(), "guarded", guardedPut),
		}
		ratios := make([][]float64, len(legs))
		for round := range rounds {
			for _, l := range legs {
				l.total = 0
				l.timed(t, l.start)
			}
			for i := range n {
				for j := range legs {
					l := legs[(i+j)%len(legs)]
					l.timed(t, func() error { return l.put(i) })
				}
			}
			for _, l := range legs {
				l.timed(t, l.stop)
			}
			raw := legs[2].total
			line := fmt.Sprintf("%d instances, round %d: raw clientv3 %v (%v/instance);", n, round, raw.Round(time.Millisecond), raw/time.Duration(n))
			for j, l := range legs {
				ratios[j] = append(ratios[j], float64(l.total)/float64(raw))
				line += fmt.Sprintf(" %s %.3f", l.name, ratios[j][round])
			}
			t.Log(line)
		}
		r, mr, g := ratios[0], ratios[1], ratios[3]
		t.Logf("%d instances, %d rounds: roster vs raw clientv3 median %.2f (%.2f–%.2f); with metrics on (SDK meter provider) %.2f (%.2f–%.2f); raw with guarded puts %.2f (%.2f–%.2f), so roster vs guarded %.2f",
			n, rounds, medianOf(r), slices.Min(r), slices.Max(r), medianOf(mr), slices.Min(mr), slices.Max(mr),
			medianOf(g), slices.Min(g), slices.Max(g), medianOf(r)/medianOf(g))
	}
}

// A leg is one way of registering instances, timed call by call.
type leg struct {
	name  string
	start func() error
	put   func(i int) error
	stop  func() error
	total time.Duration
}

func (l *leg) timed(t *testing.T, f func() error) {
	t.Helper()
	start := time.Now()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", l.name, err)
	}
	l.total += time.Since(start)
}

func rosterLeg(ctx context.Context, cli *clientv3.Client, service string, opts ...registry.Option) *leg {
	var r *registry.Registrar
	return &leg{
		name:  service,
		start: func() (err error) { r, err = registry.New(cli, opts...); return err },
		put: func(i int) error {
			return r.Register(ctx, roster.Instance{Service: service, ID: fmt.Sprintf("i%05d", i), Addr: "10.0.0.1:8080"})
		},
		stop: func() error { return r.Shutdown(ctx) },
	}
}

// rawLeg is registerRaw's way, call by call, for service's keys.
func rawLeg(ctx context.Context, cli *clientv3.Client, service string, put func(context.Context, *clientv3.Client, string, string, clientv3.LeaseID) error) *leg {
	var (
		lease   clientv3.LeaseID
		stopKA  context.CancelFunc
		drained chan struct{}
	)
	return &leg{
		name: service,
		start: func() error {
			l, err := cli.Grant(ctx, int64(roster.DefaultTTL/time.Second))
			if err != nil {
				return err
			}
			lease = l.ID
			var kctx context.Context
			kctx, stopKA = context.WithCancel(ctx)
			ch, err := cli.KeepAlive(kctx, lease)
			if err != nil {
				stopKA()
				return err
			}
			drained = make(chan struct{})
			go func() {
				defer close(drained)
				for range ch {
				}
			}()
			return nil
		},
		put: func(i int) error {
			val, err := roster.EncodeInstance(roster.Instance{Service: service, ID: fmt.Sprintf("i%05d", i), Addr: "10.0.0.1:8080"})
			if err != nil {
				return err
			}
			return put(ctx, cli, fmt.Sprintf("/roster/services/%s/i%05d", service, i), string(val), lease)
		},
		stop: func() error {
			stopKA()
			<-drained
			_, err := cli.Revoke(ctx, lease)
			return err
		},
	}
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
