package discovery

import (
	"fmt"
	"strconv"
	"testing"
)

type namedPick struct {
	name string
	pick func(i int) (Picked, error)
}

// benchPickers returns every picker over n instances with weights 1..10.
func benchPickers(n int) []namedPick {
	insts := nInstances(n)
	for i := range insts {
		insts[i].Weight = 1 + i%10
	}
	src := newStatic(insts...)
	rr, rnd, w, p2c, h := NewRoundRobin(src), NewRandom(src), NewWeighted(src), NewP2C(src), NewConsistentHash(src)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	return []namedPick{
		{"roundrobin", func(int) (Picked, error) { return rr.Pick() }},
		{"random", func(int) (Picked, error) { return rnd.Pick() }},
		{"weighted", func(int) (Picked, error) { return w.Pick() }},
		{"p2c", func(int) (Picked, error) { return p2c.Pick() }},
		{"hash", func(i int) (Picked, error) { return h.Pick(keys[i&1023]) }},
	}
}

// BenchmarkPick measures one Pick plus its Done for each picker, with 10
// and 10,000 instances, on a warm table (the per-snapshot build is
// BenchmarkPickerRebuild).
//
//	go test -run '^$' -bench Pick -benchmem ./discovery
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 10000} {
		for _, p := range benchPickers(n) {
			b.Run(fmt.Sprintf("%s/n=%d", p.name, n), func(b *testing.B) {
				pk, err := p.pick(0) // builds the table
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

// BenchmarkPickParallel is BenchmarkPick from all cores at once, for the
// cost of the shared counters.
func BenchmarkPickParallel(b *testing.B) {
	for _, p := range benchPickers(100) {
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

// BenchmarkPickerRebuild measures the per-snapshot precomputation each
// picker pays once per change of the instances.
func BenchmarkPickerRebuild(b *testing.B) {
	for _, n := range []int{10, 10000} {
		insts := nInstances(n)
		for i := range insts {
			insts[i].Weight = 1 + i%10
		}
		for _, kind := range []string{"roundrobin", "weighted", "hash"} {
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				src := newStatic(insts...)
				var p interface{ current() *table }
				switch kind {
				case "roundrobin":
					p = &NewRoundRobin(src).base
				case "weighted":
					p = &NewWeighted(src).base
				default:
					p = &NewConsistentHash(src).base
				}
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					src.set(insts...) // a new snapshot with the same instances
					b.StartTimer()
					p.current()
				}
			})
		}
	}
}

// Acceptance 5: Pick does not allocate at 10,000 instances either.
func TestPickAllocationFreeAtScale(t *testing.T) {
	for _, p := range benchPickers(10000) {
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
