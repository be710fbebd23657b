package discovery

import (
	"cmp"
	"slices"
)

// ConsistentHash routes each key to the same instance for as long as that
// instance is there (sticky routing), and moves only about 1/N of the keys
// when one of N instances comes or goes. It is a hash ring: every serving
// instance gets a number of points (virtual nodes, WithVirtualNodes)
// placed by hashing its ID, and a key goes to the instance owning the
// first point at or after the key's hash. The ring is built once per
// snapshot. Keys of an ejected instance go to the next instance on the
// ring and come back after the cool-down.
//
// The hash functions are fixed (FNV-1a, finalized with a 64-bit mixer),
// so every process routes a key the same way. Weights are ignored.
type ConsistentHash struct {
	base
}

// point is one virtual node on the ring.
type point struct {
	hash uint64
	ent  int32 // index into table.ents
}

// NewConsistentHash returns a consistent-hashing picker over src.
func NewConsistentHash(src Source, opts ...PickerOption) *ConsistentHash {
	p := &ConsistentHash{}
	p.base = newBase(src, opts, func(t *table) { buildRing(t, p.cfg.vnodes) })
	return p
}

func buildRing(t *table, vnodes int) {
	vnodes = max(1, min(vnodes, maxRingPoints/len(t.ents)))
	t.ring = make([]point, 0, len(t.ents)*vnodes)
	for i, e := range t.ents {
		h := hashString(e.inst.ID)
		for v := range vnodes {
			t.ring = append(t.ring, point{hash: mix64(h ^ uint64(v+1)*0x9e3779b97f4a7c15), ent: int32(i)})
		}
	}
	t.ring = sortPoints(t.ring)
}

// sortPoints sorts points by hash with a stable least-significant-digit
// radix sort, 11 bits per pass (few enough buckets to stay in cache): a
// million points sort in tens of milliseconds where a comparison sort
// takes hundreds. Stability breaks ties by instance order, so every
// process builds the same ring. Small rings use a comparison sort.
func sortPoints(ps []point) []point {
	if len(ps) < 1<<12 {
		slices.SortFunc(ps, func(a, b point) int {
			if c := cmp.Compare(a.hash, b.hash); c != 0 {
				return c
			}
			return cmp.Compare(a.ent, b.ent) // as stable as the radix sort
		})
		return ps
	}
	const bits = 11
	buf := make([]point, len(ps))
	var count [1 << bits]int
	for shift := uint(0); shift < 64; shift += bits {
		clear(count[:])
		for _, p := range ps {
			count[(p.hash>>shift)&(1<<bits-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, p := range ps {
			d := (p.hash >> shift) & (1<<bits - 1)
			buf[count[d]] = p
			count[d]++
		}
		ps, buf = buf, ps
	}
	return ps
}

// Pick returns the instance that owns key, or ErrNoInstances.
func (p *ConsistentHash) Pick(key string) (Picked, error) {
	t := p.current()
	if len(t.ents) == 0 {
		return Picked{}, ErrNoInstances
	}
	h := hashString(key)
	lo, hi := 0, len(t.ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(t.ring) {
		lo = 0
	}
	// Walk on past ejected instances' points.
	for i, k := lo, 0; k < len(t.ring); k++ {
		e := &t.ents[t.ring[i].ent]
		if p.usable(e.h) {
			return p.take(e), nil
		}
		if i++; i == len(t.ring) {
			i = 0
		}
	}
	return p.take(&t.ents[t.ring[lo].ent]), nil
}

// hashString is 64-bit FNV-1a followed by mix64, inlined so hashing a
// key does not allocate.
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
