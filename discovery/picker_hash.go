package discovery

import (
	"cmp"
	"slices"
)

// ConsistentHash routes each key to the same instance for as long as that
// instance is there (sticky routing), and moves only about 1/N of the keys
// when one of N instances comes or goes. It is a hash ring: every serving
// instance has WithVirtualNodes points placed by hashing its ID, and a key
// goes to the instance owning the first point at or after the key's hash.
// A change adds or removes that instance's points only. Keys of an ejected
// instance go to the next instance on the ring and come back after the
// cool-down.
//
// The hash functions are fixed (FNV-1a, finalized with a 64-bit mixer), so
// every process routes a key the same way. Weights are ignored.
type ConsistentHash struct {
	base
}

// NewConsistentHash returns a consistent-hashing picker over src.
func NewConsistentHash(src Source, opts ...PickerOption) (*ConsistentHash, error) {
	p := &ConsistentHash{}
	if err := p.init(kindHash, src, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// Pick returns the instance that owns key, or ErrNoInstances.
func (p *ConsistentHash) Pick(key string) (Picked, error) {
	st := p.current()
	if st.n == 0 {
		return Picked{}, ErrNoInstances
	}
	pt, e, ok := st.ring.owner(hashString(key))
	if !ok {
		return Picked{}, ErrNoInstances // emptied since st
	}
	if p.usable(e) {
		return p.take(e), nil
	}
	// Walk on past the points of ejected instances.
	first := e
	for range st.ring.n.Load() {
		if pt, e, ok = st.ring.owner(pt.h + 1); !ok { // past the last hash, round to 0
			break
		}
		if p.usable(e) {
			return p.take(e), nil
		}
	}
	return p.take(first), nil
}

// ringHashes returns the points of an instance on the ring.
func ringHashes(id string, vnodes int) []uint64 {
	h := hashString(id)
	out := make([]uint64, vnodes)
	for v := range out {
		out[v] = mix64(h ^ uint64(v+1)*0x9e3779b97f4a7c15)
	}
	return out
}

// sortPoints sorts points by hash with a stable least-significant-digit
// radix sort, 11 bits per pass (few enough buckets to stay in cache): a
// million points sort in tens of milliseconds where a comparison sort
// takes hundreds. Stability keeps ties in instance order, so given points
// in ID order every process builds the same ring. Small rings use a
// comparison sort.
func sortPoints(ps []point) []point {
	if len(ps) < 1<<12 {
		slices.SortStableFunc(ps, func(a, b point) int { return cmp.Compare(a.h, b.h) })
		return ps
	}
	const bits = 11
	buf := make([]point, len(ps))
	var count [1 << bits]int
	for shift := uint(0); shift < 64; shift += bits {
		clear(count[:])
		for _, p := range ps {
			count[(p.h>>shift)&(1<<bits-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, p := range ps {
			d := (p.h >> shift) & (1<<bits - 1)
			buf[count[d]] = p
			count[d]++
		}
		ps, buf = buf, ps
	}
	return ps
}

// hashString is 64-bit FNV-1a followed by mix64, inlined so hashing a key
// does not allocate.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the splitmix64 finalizer: FNV alone spreads short, similar
// strings poorly over the high bits the ring search depends on.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
