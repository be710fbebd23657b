package discovery

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestModulusAgainstTheRemainder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	divisors := []uint64{1, 2, 3, 7, 10, 1 << 20, 1<<20 + 1, 1<<32 - 1, 1 << 32, 1<<32 + 1, 1e9 + 7, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	for range 200 {
		divisors = append(divisors, rng.Uint64()>>rng.IntN(64)|1, rng.Uint64()>>rng.IntN(64)+1)
	}
	for _, d := range divisors {
		m := newModulus(d)
		numbers := []uint64{0, 1, d - 1, d, d + 1, 2*d - 1, 2 * d, math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64 - d}
		for range 500 {
			numbers = append(numbers, rng.Uint64(), rng.Uint64()>>rng.IntN(64))
		}
		for _, a := range numbers {
			if got, want := m.of(a), a%d; got != want {
				t.Fatalf("%d mod %d: got %d, want %d", a, d, got, want)
			}
		}
	}
}
