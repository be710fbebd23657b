package discovery

import "math/bits"

// modulus reduces 64-bit numbers modulo d by multiplications only: the
// direct remainder of Lemire, Kaser and Kurz ("Faster remainder by direct
// computation", 2019) with a 128-bit constant, exact for every 64-bit
// number and divisor. A pick of the weighted stride walk needs one
// remainder, and a 64-bit division costs more than the rest of the pick.
type modulus struct {
	d      uint64
	hi, lo uint64 // ceil(2^128 / d), mod 2^128
}

func newModulus(d uint64) modulus {
	q1, r := bits.Div64(0, ^uint64(0), d)
	q0, _ := bits.Div64(r, ^uint64(0), d)
	lo, carry := bits.Add64(q0, 1, 0)
	return modulus{d: d, hi: q1 + carry, lo: lo}
}

// of returns a mod d.
func (m modulus) of(a uint64) uint64 {
	// The fraction a/d, to 128 bits: M·a mod 2^128.
	h, fracLo := bits.Mul64(m.lo, a)
	fracHi := m.hi*a + h
	// Times d, its integer part is the remainder.
	h1, _ := bits.Mul64(fracLo, m.d)
	h2, l2 := bits.Mul64(fracHi, m.d)
	_, carry := bits.Add64(l2, h1, 0)
	return h2 + carry
}
