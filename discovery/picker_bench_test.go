package discovery

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/rosterkit/roster"
)

type namedPick struct {
	name string
	pick func(i int) (Picked, error)
}

// weightedInstances returns n instances with weights 1..10.
func weightedInstances(n int) []roster.Instance {
	insts := nInstances(n)
	for i := range insts {
		insts[i].Weight = 1 + i%10
	}
	return insts
}

// pickers returns every picker over src, with opts.
func pickers(src Source, opts ...PickerOption) []namedPick {
	rr, rnd := must(NewRoundRobin(src, opts...)), must(NewRandom(src, opts...))
	w, p2c, h := must(NewWeighted(src, opts...)), must(NewP2C(src, opts...)), must(NewConsistentHash(src, opts...))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	return []namedPick{
		{kindRoundRobin, func(int) (Picked, error) { return rr.Pick() }},
		{kindRandom, func(int) (Picked, error) { return rnd.Pick() }},
		{kindWeighted, func(int) (Picked, error) { return w.Pick() }},
		{kindP2C, func(int) (Picked, error) { return p2c.Pick() }},
		{kindHash, func(i int) (Picked, error) { return h.Pick(keys[i&1023]) }},
	}
}

func benchSizes(b *testing.B) []int {
	if testing.Short() {
		return []int{10, 10000}
	}
	return []int{10, 10000, 100000}
}

// BenchmarkPick measures one Pick plus its Done for each picker on a warm
// state (the cost of a change is BenchmarkPickerUpdate):
//
//	go test -run '^$' -bench 'Pick$' -benchmem ./discovery
func BenchmarkPick(b *testing.B) {
	for _, n := range benchSizes(b) {
		for _, p := range pickers(newStatic(weightedInstances(n)...)) {
			b.Run(fmt.Sprintf("%s/n=%d", p.name, n), func(b *testing.B) {
				pk, err := p.pick(0) // builds the state
				if err != nil {
					b.Fatal(err)
				}
				pk.Done(nil)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					pk, _ := p.pick(i)
					pk.Done(nil)
				}
			})
		}
	}
}

// BenchmarkPickKeys is BenchmarkPick's hash picker at the largest size
// for key sets of several sizes: BenchmarkPick cycles through 1,024 keys,
// and what a pick costs at 100,000 instances depends on how many distinct
// keys recent picks read, since each key reads its own table slot, leaf
// and entry.
//
//	go test -run '^$' -bench PickKeys -benchmem ./discovery
func BenchmarkPickKeys(b *testing.B) {
	sizes := benchSizes(b)
	n := sizes[len(sizes)-1]
	h := must(NewConsistentHash(newStatic(weightedInstances(n)...)))
	for _, nk := range []int{256, 512, 1024, 2048, 4096} { // powers of 2
		keys := make([]string, nk)
		for i := range keys {
			keys[i] = "user-" + strconv.Itoa(i)
		}
		b.Run(fmt.Sprintf("keys=%d/n=%d", nk, n), func(b *testing.B) {
			pk, err := h.Pick(keys[0]) // builds the state
			if err != nil {
				b.Fatal(err)
			}
			pk.Done(nil)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				pk, _ := h.Pick(keys[i&(nk-1)])
				pk.Done(nil)
			}
		})
	}
}

// BenchmarkPickMetrics is BenchmarkPick at 100 instances with metrics off
// (a no-op meter provider) and on (the OpenTelemetry SDK with a reader),
// in one run: a pick only counts in its entry either way.
//
//	go test -run '^$' -bench PickMetrics -benchmem ./discovery
func BenchmarkPickMetrics(b *testing.B) {
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer sdk.Shutdown(b.Context())
	for _, mode := range []struct {
		name string
		mp   metric.MeterProvider
	}{{"off", noop.NewMeterProvider()}, {"on", sdk}} {
		for _, p := range pickers(newStatic(weightedInstances(100)...), WithMeterProvider(mode.mp)) {
			b.Run(p.name+"/metrics="+mode.name, func(b *testing.B) {
				pk, _ := p.pick(0)
				pk.Done(nil)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					pk, _ := p.pick(i)
					pk.Done(nil)
				}
			})
		}
	}
}

// BenchmarkPickParallel is BenchmarkPick from all cores at once, for the
// cost of the shared counters.
func BenchmarkPickParallel(b *testing.B) {
	for _, p := range pickers(newStatic(weightedInstances(100)...)) {
		b.Run(p.name, func(b *testing.B) {
			pk, _ := p.pick(0)
			pk.Done(nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					pk, _ := p.pick(i)
					pk.Done(nil)
				}
			})
		})
	}
}

// BenchmarkPickerUpdate measures what a picker pays for one change of the
// instances, the first pick after it: the source alternates between two
// snapshots a cache would produce, n instances and the same plus one. The
// ring's cost is its instance's points; hash-40-points is
// WithVirtualNodes(40).
//
//	go test -run '^$' -bench PickerUpdate -benchmem ./discovery
func BenchmarkPickerUpdate(b *testing.B) {
	for _, n := range benchSizes(b) {
		src := newStatic(weightedInstances(n)...)
		without := src.Snapshot()
		extra := roster.Instance{Service: "svc", ID: "new", Addr: "10.255.0.1:80", Weight: 7}
		src.edit([]roster.Instance{extra})
		with := src.Snapshot()
		all := pickers(src)
		h40 := must(NewConsistentHash(src, WithVirtualNodes(40)))
		all = append(all, namedPick{"hash-40-points", func(int) (Picked, error) { return h40.Pick("k") }})
		for _, p := range all {
			b.Run(fmt.Sprintf("%s/n=%d", p.name, n), func(b *testing.B) {
				pk, _ := p.pick(0) // the first state, built once
				pk.Done(nil)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if i%2 == 0 {
						src.snap.Store(without)
					} else {
						src.snap.Store(with)
					}
					pk, _ := p.pick(i)
					pk.Done(nil)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
			})
		}
	}
}

// Pick does not allocate, at 10,000 instances either, and costs the same
// with an SDK meter provider.
func TestPickAllocationFreeAtScale(t *testing.T) {
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer sdk.Shutdown(t.Context())
	for _, p := range pickers(newStatic(weightedInstances(10000)...), WithMeterProvider(sdk)) {
		pk, err := p.pick(0)
		if err != nil {
			t.Fatal(err)
		}
		pk.Done(nil)
		i := 0
		if allocs := testing.AllocsPerRun(1000, func() {
			pk, _ := p.pick(i)
			pk.Done(nil)
			i++
		}); allocs != 0 {
			t.Errorf("%s: %v allocs per pick", p.name, allocs)
		}
	}
}

// A picker's update for one change stays far below a rebuild: bounded
// here loosely (the race detector and a shared machine slow everything),
// BenchmarkPickerUpdate gives the figures.
func TestPickerUpdateIsIncremental(t *testing.T) {
	const n = 5000
	src := newStatic(weightedInstances(n)...)
	without := src.Snapshot()
	src.edit([]roster.Instance{{Service: "svc", ID: "new", Addr: "10.255.0.1:80", Weight: 7}})
	with := src.Snapshot()
	for _, p := range pickers(src) {
		pk, _ := p.pick(0)
		pk.Done(nil)
		src.set(weightedInstances(n)...) // a snapshot sharing nothing: a full diff
		start := time.Now()
		pk, _ = p.pick(1)
		pk.Done(nil)
		build := time.Since(start)
		src.snap.Store(without)
		pk, _ = p.pick(2)
		pk.Done(nil)
		const changes = 200
		start = time.Now()
		for i := range changes {
			if i%2 == 0 {
				src.snap.Store(with)
			} else {
				src.snap.Store(without)
			}
			pk, _ := p.pick(i)
			pk.Done(nil)
		}
		per := time.Since(start) / changes
		t.Logf("%s at %d instances: %v per change, %v for a snapshot sharing nothing", p.name, n, per, build)
		if per > build/5 && per > 200*time.Microsecond {
			t.Errorf("%s: a change costs %v, a whole rebuild %v", p.name, per, build)
		}
	}
}

// BenchmarkPickFloor is what a pick cannot do without, at each size, to
// read BenchmarkPick against in the same run:
//
//	go test -run '^$' -bench 'Pick$|PickFloor' -benchmem ./discovery
//
// index reads a random element of a []uint64 of n; entry counts a pick
// and its Done in a random one of n entries allocated one by one, as a
// picker's are (they outlive snapshots); ring is the first of n × 100
// sorted hashes at or after a key's hash (a binary search of one flat
// array, the most compact ring) and the entry of that point, for the keys
// BenchmarkPick uses; direct is the entry named by one uint32 of a table
// with about a slot a point, for the same keys: no ring, only the fewest
// reads a lookup by hash can make.
func BenchmarkPickFloor(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("index/n=%d", n), func(b *testing.B) {
			xs := make([]uint64, n)
			for i := range xs {
				xs[i] = uint64(i)
			}
			var sum uint64
			for b.Loop() {
				sum += xs[rand.IntN(n)]
			}
			sink = sum
		})
		ents := make([]*entry, n)
		for i := range ents {
			ents[i] = newEntry(&roster.Instance{ID: strconv.Itoa(i)})
		}
		b.Run(fmt.Sprintf("entry/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				e := ents[rand.IntN(n)]
				if e.until.Load() == 0 {
					e.picks.Add(1)
				}
				e.dones.Add(1)
			}
		})
		b.Run(fmt.Sprintf("ring/n=%d", n), func(b *testing.B) {
			hs := make([]uint64, 0, n*DefaultVirtualNodes)
			for _, e := range ents {
				hs = append(hs, ringHashes(e.id, DefaultVirtualNodes)...)
			}
			slices.Sort(hs)
			keys := make([]uint64, 1024)
			for i := range keys {
				keys[i] = hashString("user-" + strconv.Itoa(i))
			}
			for i := 0; b.Loop(); i++ {
				j, _ := slices.BinarySearch(hs, keys[i&1023])
				if j == len(hs) {
					j = 0
				}
				e := ents[hs[j]%uint64(n)]
				e.picks.Add(1)
				e.dones.Add(1)
			}
		})
		b.Run(fmt.Sprintf("direct/n=%d", n), func(b *testing.B) {
			shift := 64 - bits.Len(uint(n*DefaultVirtualNodes))
			tab := make([]uint32, 1<<(64-shift))
			for i := range tab {
				tab[i] = uint32(mix64(uint64(i)) % uint64(n))
			}
			keys := make([]uint64, 1024)
			for i := range keys {
				keys[i] = hashString("user-" + strconv.Itoa(i))
			}
			for i := 0; b.Loop(); i++ {
				e := ents[tab[keys[i&1023]>>shift]]
				e.picks.Add(1)
				e.dones.Add(1)
			}
		})
	}
}

var sink uint64

// BenchmarkPickerChurn is BenchmarkPickerUpdate with a different instance
// at each change, as in a rolling deploy: the source steps through
// snapshots that drop one of the instances and then bring it back, a
// different one each time, so what the change touches is not left in
// the cache by the change before.
//
//	go test -run '^$' -bench PickerChurn -benchmem ./discovery
func BenchmarkPickerChurn(b *testing.B) {
	const rolls = 4096
	for _, n := range benchSizes(b) {
		insts := weightedInstances(n)
		src := newStatic(insts...)
		full := src.Snapshot()
		var steps []*Snapshot
		for j := range min(rolls, n) {
			e := newEditor(full.root)
			e.remove(insts[(j*7919)%n].ID)
			steps = append(steps, &Snapshot{service: full.service, root: e.root, rev: full.rev + 1}, full)
		}
		all := pickers(src)
		h40 := must(NewConsistentHash(src, WithVirtualNodes(40)))
		all = append(all, namedPick{"hash-40-points", func(int) (Picked, error) { return h40.Pick("k") }})
		for _, p := range all {
			b.Run(fmt.Sprintf("%s/n=%d", p.name, n), func(b *testing.B) {
				src.snap.Store(full)
				pk, _ := p.pick(0)
				pk.Done(nil)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					src.snap.Store(steps[i%len(steps)])
					pk, _ := p.pick(i)
					pk.Done(nil)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
			})
		}
	}
}
