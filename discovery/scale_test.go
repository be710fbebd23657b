package discovery_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// The tests here run at a size CI affords by default and at full size with
// ROSTER_SCALE set (to 1, or to a number of instances):
//
//	ROSTER_SCALE=1 go test -run 'Scale' -v ./discovery

// scale returns small, or large when ROSTER_SCALE is set.
func scale(t *testing.T, small, large int) int {
	s := os.Getenv("ROSTER_SCALE")
	if s == "" {
		return small
	}
	if n, err := strconv.Atoi(s); err == nil && n > 1 {
		return n
	}
	return large
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 0.5) }

// First sync of a large service: time against the raw consumer's Get and
// decode, and the heap the cache holds per instance; then a burst
// of 1,000 changes from 8 writers, after which the cache equals etcd.
func TestScaleFirstSync(t *testing.T) {
	n := scale(t, 5000, 100000)
	m := etcdtest.Start(t)
	writer := m.Client()
	registerMany(t, writer, "big", n)
	ctx := ctxT(t)

	var rosterT, rawT []time.Duration
	for range 3 {
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		start := time.Now()
		got, err := syncRaw(ctx, cli, "big")
		require.NoError(t, err)
		require.Equal(t, n, got)
		rawT = append(rawT, time.Since(start))

		d := discoverer(t, cli)
		start = time.Now()
		got, err = syncRoster(ctx, d, "big")
		require.NoError(t, err)
		require.Equal(t, n, got)
		rosterT = append(rosterT, time.Since(start))
		require.NoError(t, d.Close())
	}

	cli := etcdtest.NewClient(t, m.Endpoints()...)
	d := discoverer(t, cli)
	heap0 := heapInUse()
	c := cache(t, d, "big")
	require.NoError(t, c.WaitSynced(ctx))
	heap1 := heapInUse()
	perInstance := float64(heap1-min(heap0, heap1)) / float64(n)
	require.Equal(t, n, c.Snapshot().Len())

	// The burst: 1,000 single writes from 8 writers: deregistrations, new
	// instances, updates.
	const burst = 1000
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < burst; i += 8 {
				switch i % 3 {
				case 0:
					deleteInstance(t, writer, "big", fmt.Sprintf("i%06d", i*7%n))
				case 1:
					putInstance(t, writer, instance("big", fmt.Sprintf("new%04d", i)))
				default:
					in := instanceN((i*13 + 1) % n)
					in.Service, in.Weight = "big", 42
					putInstance(t, writer, in)
				}
			}
		})
	}
	wg.Wait()
	resp, err := writer.Get(ctx, "x", clientv3.WithCountOnly())
	require.NoError(t, err)
	eventually(t, func() bool { return c.Snapshot().Revision() >= resp.Header.Revision }, "cache did not follow the burst")
	follow := time.Since(start)
	requireConverges(t, c, writer)
	t.Logf("%d instances: first sync %v, raw Get+decode %v (medians of 3), ratio %.2f; heap %.0f bytes/instance; a %d-change burst from 8 writers followed %v after it began",
		n, median(rosterT).Round(time.Millisecond), median(rawT).Round(time.Millisecond),
		float64(median(rosterT))/float64(median(rawT)), perInstance, burst, follow.Round(time.Millisecond))
	assert.LessOrEqual(t, perInstance, 200.0, "heap per instance held")
	runtime.KeepAlive(c)
}

// consumer is a child process that follows one service, with a cache or
// as the raw consumer, so that its CPU time is its own. Commands: "cpu"
// answers its CPU time so far in nanoseconds; "wait <rev>" answers, once
// its view is complete at rev, "<instances> <digest>".
var consumerRole = etcdtest.Role("discovery-consumer", func(args []string, in *bufio.Scanner, out io.Writer) error {
	endpoint, kind, service := args[0], args[1], args[2]
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx := context.Background()
	var view func() (int64, []roster.Instance)
	switch kind {
	case "roster":
		d, err := discovery.New(cli)
		if err != nil {
			return err
		}
		defer d.Close()
		c, err := d.Watch(service)
		if err != nil {
			return err
		}
		if err := c.WaitSynced(ctx); err != nil {
			return err
		}
		view = func() (int64, []roster.Instance) { s := c.Snapshot(); return s.Revision(), all(s) }
	default:
		r, err := startRaw(ctx, cli, service, nil)
		if err != nil {
			return err
		}
		defer r.stop()
		view = func() (int64, []roster.Instance) {
			r.mu.Lock()
			defer r.mu.Unlock()
			insts := values(r.byID)
			slices.SortFunc(insts, func(a, b roster.Instance) int { return strings.Compare(a.ID, b.ID) })
			return r.rev, insts
		}
	}
	_, insts := view()
	fmt.Fprintln(out, "synced", len(insts))
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "cpu":
			fmt.Fprintln(out, int64(cpuTime()))
		case "wait":
			want, _ := strconv.ParseInt(arg, 10, 64)
			for {
				rev, insts := view()
				if rev >= want {
					fmt.Fprintln(out, len(insts), digest(insts))
					break
				}
				time.Sleep(time.Millisecond) // polling a condition; the parent bounds the wait
			}
		}
	}
	return nil
})

func digest(insts []roster.Instance) string {
	h := sha256.New()
	for _, in := range insts {
		v, _ := roster.EncodeInstance(in)
		fmt.Fprintf(h, "%s %s\n", in.ID, v)
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:8])
}

// A rolling replacement of every instance (deregister, then register a
// successor; 8 writers) leaves a cache equal to etcd's truth, and costs
// its process CPU time reported against the raw consumer's.
func TestScaleRollingReplacement(t *testing.T) {
	n := scale(t, 1000, 10000)
	m := etcdtest.Start(t)
	writer := m.Client()
	registerMany(t, writer, "roll", n)
	kids := map[string]*etcdtest.Child{}
	for _, kind := range []string{"roster", "raw"} {
		kids[kind] = etcdtest.StartChild(t, consumerRole, m.Endpoints()[0], kind, "roll")
		require.Equal(t, fmt.Sprint("synced ", n), kids[kind].Line(within))
	}
	cpu := func(kind string) time.Duration {
		kids[kind].Send("cpu")
		ns, err := strconv.ParseInt(kids[kind].Line(within), 10, 64)
		require.NoError(t, err)
		return time.Duration(ns)
	}
	cpu0 := map[string]time.Duration{"roster": cpu("roster"), "raw": cpu("raw")}

	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				old := instanceN(i)
				deleteInstance(t, writer, "roll", old.ID)
				next := old
				next.Service, next.ID, next.Addr = "roll", fmt.Sprintf("r%06d", i), fmt.Sprintf("10.200.%d.%d:8080", i>>8, i&255)
				putInstance(t, writer, next)
			}
		})
	}
	wg.Wait()
	written := time.Since(start)
	resp, err := writer.Get(ctxT(t), "x", clientv3.WithCountOnly())
	require.NoError(t, err)
	want := truth(t, writer, "roll")
	require.Len(t, want, n)
	wantLine := fmt.Sprint(n, " ", digest(want))
	for _, kind := range []string{"roster", "raw"} {
		kids[kind].Send(fmt.Sprint("wait ", resp.Header.Revision))
		assert.Equal(t, wantLine, kids[kind].Line(within), "%s consumer equals etcd's truth", kind)
	}
	caughtUp := time.Since(start)
	used := map[string]time.Duration{}
	for kind, c0 := range cpu0 {
		used[kind] = cpu(kind) - c0
	}
	t.Logf("rolling replacement of %d instances (8 writers, %d events) written in %v, consumers caught up %v after the start; consumer CPU: cache %v, raw %v, ratio %.2f",
		n, 2*n, written.Round(time.Millisecond), caughtUp.Round(time.Millisecond),
		used["roster"].Round(time.Millisecond), used["raw"].Round(time.Millisecond), float64(used["roster"])/float64(used["raw"]))
}

// Many caches of one service on one member, each on its own client as in
// as many processes: how long until all have synced, and until all see a
// change, against as many raw consumers in the same run.
func TestScaleManyCachesOfOneService(t *testing.T) {
	k := scale(t, 10, 100)
	const n = 1000
	m := etcdtest.Start(t)
	writer := m.Client()
	registerMany(t, writer, "svc", n)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()

	seenCache, seenRaw := make(chan seen, 16*k), make(chan seen, 16*k)
	heap0 := heapInUse()
	start := time.Now()
	var caches []*discovery.Cache
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range k {
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		c := cache(t, discoverer(t, cli), "svc")
		caches = append(caches, c)
		wg.Go(func() { require.NoError(t, c.WaitSynced(ctx)) })
	}
	wg.Wait()
	syncAll := time.Since(start)
	heap1 := heapInUse()
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	for _, c := range caches {
		changes := c.Changes(ctx)
		next(t, changes)
		readers.Go(func() {
			for ch := range changes {
				select {
				case seenCache <- seen{ch.Snapshot.Revision(), time.Now()}:
				case <-ctx.Done():
				}
			}
		})
	}
	start = time.Now()
	var raws []*rawConsumer
	for range k {
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		wg.Go(func() {
			r, err := startRaw(ctx, cli, "svc", seenRaw)
			require.NoError(t, err)
			mu.Lock()
			raws = append(raws, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	syncRawAll := time.Since(start)
	defer func() {
		for _, r := range raws {
			r.stop()
		}
	}()

	// Time until the last of the k consumers has a change.
	byAll := func(ch chan seen, rev int64, since time.Time) time.Duration {
		var last time.Time
		for got := 0; got < k; {
			select {
			case s := <-ch:
				if s.rev >= rev {
					got++
					last = s.at
				}
			case <-time.After(within):
				t.Fatalf("revision %d not seen by all", rev)
			}
		}
		return last.Sub(since)
	}
	var cacheLat, rawLat []time.Duration
	for i := range 50 {
		in := instanceN(i)
		in.Weight = 77
		start := time.Now()
		rev := putInstance(t, writer, in)
		cacheLat = append(cacheLat, byAll(seenCache, rev, start))
		rawLat = append(rawLat, byAll(seenRaw, rev, start))
	}
	t.Logf("%d caches of a %d-instance service on one member: all synced in %v (raw consumers %v), %.0f KiB heap per cache; a change seen by all: p50 %v p99 %v, raw p50 %v p99 %v (ratio p50 %.2f)",
		k, n, syncAll.Round(time.Millisecond), syncRawAll.Round(time.Millisecond), float64(heap1-min(heap0, heap1))/float64(k)/1024,
		percentile(cacheLat, 0.5).Round(time.Microsecond), percentile(cacheLat, 0.99).Round(time.Microsecond),
		percentile(rawLat, 0.5).Round(time.Microsecond), percentile(rawLat, 0.99).Round(time.Microsecond),
		float64(percentile(cacheLat, 0.5))/float64(percentile(rawLat, 0.5)))
}

// One consumer following many services, as a gateway does: the service
// set, then a cache per service. How long until all are synced, what each
// costs in heap and in idle CPU, and how fast a change in one arrives,
// against a raw consumer per service in the same run.
func TestScaleFollowManyServices(t *testing.T) {
	services := scale(t, 50, 1000)
	const perService = 10
	m := etcdtest.Start(t)
	writer := m.Client()
	var ops []clientv3.Op
	for s := range services {
		for i := range perService {
			in := instanceN(i)
			in.Service = fmt.Sprintf("svc%04d", s)
			v, err := roster.EncodeInstance(in)
			require.NoError(t, err)
			ops = append(ops, clientv3.OpPut(keys.InstanceKey(keys.DefaultNamespace, in.Service, in.ID), string(v)))
			if len(ops) == 100 {
				_, err := writer.Txn(ctxT(t)).Then(ops...).Commit()
				require.NoError(t, err)
				ops = ops[:0]
			}
		}
	}
	if len(ops) > 0 {
		_, err := writer.Txn(ctxT(t)).Then(ops...).Commit()
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()

	cli := etcdtest.NewClient(t, m.Endpoints()...)
	heap0 := heapInUse()
	start := time.Now()
	d := discoverer(t, cli, discovery.WithProgressInterval(time.Second))
	set, err := d.WatchServices()
	require.NoError(t, err)
	defer set.Close()
	require.NoError(t, set.WaitSynced(ctx))
	names := set.Snapshot().Names()
	require.Len(t, names, services)
	caches := map[string]*discovery.Cache{}
	for _, name := range names {
		caches[name] = cache(t, d, name)
	}
	for _, c := range caches {
		require.NoError(t, c.WaitSynced(ctx))
	}
	syncAll := time.Since(start)
	heap1 := heapInUse()

	window := time.Duration(scale(t, 1, 3)) * time.Second
	idle := func() time.Duration {
		c0 := cpuTime()
		time.Sleep(window) // measuring CPU time over a fixed window
		return cpuTime() - c0
	}
	idleRoster := idle()

	// The same services followed by raw consumers, one watch each.
	rawCli := etcdtest.NewClient(t, m.Endpoints()...)
	seenRaw := make(chan seen, 64)
	raws := map[string]*rawConsumer{}
	start = time.Now()
	for _, name := range names {
		r, err := startRaw(ctx, rawCli, name, seenRaw)
		require.NoError(t, err)
		raws[name] = r
	}
	syncRaw := time.Since(start)
	defer func() {
		for _, r := range raws {
			r.stop()
		}
	}()

	seenCache := make(chan seen, 64)
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	for _, c := range caches {
		changes := c.Changes(ctx)
		next(t, changes)
		readers.Go(func() {
			for ch := range changes {
				select {
				case seenCache <- seen{ch.Snapshot.Revision(), time.Now()}:
				case <-ctx.Done():
				}
			}
		})
	}
	wait := func(ch chan seen, rev int64, since time.Time) time.Duration {
		for {
			select {
			case s := <-ch:
				if s.rev >= rev {
					return s.at.Sub(since)
				}
			case <-time.After(within):
				t.Fatalf("revision %d not seen", rev)
			}
		}
	}
	var cacheLat, rawLat []time.Duration
	for i := range 50 {
		in := instanceN(i % perService)
		in.Service, in.Weight = names[(i*37)%len(names)], 50+i
		start := time.Now()
		rev := putInstance(t, writer, in)
		cacheLat = append(cacheLat, wait(seenCache, rev, start))
		rawLat = append(rawLat, wait(seenRaw, rev, start))
	}
	cancel()
	readers.Wait()
	for _, c := range caches {
		require.NoError(t, c.Close())
	}
	require.NoError(t, set.Close())
	idleRaw := idle()
	t.Logf("one consumer following %d services × %d instances: set and caches synced in %v (raw watches %v); %.1f KiB heap per service; idle CPU over %v with a 1 s progress interval: caches %v, raw watches alone %v; a change seen: p50 %v p99 %v, raw p50 %v p99 %v",
		services, perService, syncAll.Round(time.Millisecond), syncRaw.Round(time.Millisecond),
		float64(heap1-min(heap0, heap1))/float64(services)/1024, window, idleRoster.Round(time.Millisecond), idleRaw.Round(time.Millisecond),
		percentile(cacheLat, 0.5).Round(time.Microsecond), percentile(cacheLat, 0.99).Round(time.Microsecond),
		percentile(rawLat, 0.5).Round(time.Microsecond), percentile(rawLat, 0.99).Round(time.Microsecond))
}
